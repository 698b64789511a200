"""Commands that run or administer the service: serve, migrate, openapi, keys."""

import typer


def register(app: typer.Typer) -> None:
    """Add the server commands to `app`."""
