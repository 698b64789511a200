"""The `scaling-service` command line: one module per group of commands."""
