"""Parsing of external formats into the core's arrays (shared by the CLI and the HTTP layer)."""
