"""Persistence: ORM tables and one module of queries per aggregate."""
