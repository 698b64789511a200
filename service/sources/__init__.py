"""Runs pulled from the platforms that already record them (MLflow tracking servers)."""
