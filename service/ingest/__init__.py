"""Ingestion of training runs: JSON batches and CSV / JSON-lines files."""
