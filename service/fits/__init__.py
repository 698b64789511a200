"""Fits as a service: runs from the database into the pure core, results back with provenance."""
