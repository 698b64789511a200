"""Commands that run or administer the service: serve, migrate, openapi, keys."""

import ipaddress
import json
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal, TypedDict

import structlog
import typer
from rich.console import Console
from sqlalchemy.orm import Session

from service.cli.options import JsonFlag, ScopeOption
from service.cli.output import KEY_COLUMNS, print_list
from service.schemas.keys import KeyOut
from service.settings import Settings

if TYPE_CHECKING:
    from service.store.models import ApiKey

keys_app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)
err = Console(stderr=True, soft_wrap=True)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@contextmanager
def _multiprocess_metrics(workers: int) -> Iterator[str | None]:
    """With several workers, point PROMETHEUS_MULTIPROC_DIR at a fresh directory (a new temporary
    one, or the given one emptied of old samples) before uvicorn starts them, mark workers that
    died without cleaning up as dead while serving, and remove the temporary directory after."""
    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if workers < 2 and not given:
        yield None
        return
    if given:
        path = Path(given)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):  # samples of an earlier run
            stale.unlink()
    else:
        path = Path(tempfile.mkdtemp(prefix="scaling-metrics-"))
    from service import metrics  # imported before the variable is set: no sample files here

    os.environ[metrics.MULTIPROC_ENV] = str(path)
    stop = threading.Event()

    def reap() -> None:
        while not stop.wait(5.0):
            metrics.reap_dead_processes(path)

    reaper = threading.Thread(target=reap, name="metrics-reaper", daemon=True)
    reaper.start()
    try:
        yield str(path)
    finally:
        stop.set()
        reaper.join(timeout=10)
        if not given:
            os.environ.pop(metrics.MULTIPROC_ENV, None)
            shutil.rmtree(path, ignore_errors=True)


# uvicorn kills a worker that has not answered its supervisor's ping within this many seconds
# and starts another (default 5). A worker answers once Python has started and imported
# uvicorn, which on a loaded machine takes longer than 5 s: every replacement was killed in
# turn and `serve --workers 2` never answered (tests/cli/test_serve_workers.py).
WORKER_HEALTHCHECK_TIMEOUT_S = 60


class UvicornOptions(TypedDict):
    loop: Literal["auto"]
    http: Literal["auto"]
    log_level: str
    log_config: None
    access_log: bool


def uvicorn_options(log_level: str) -> UvicornOptions:
    """How `serve` runs uvicorn (bench/api.py serves its bare baseline app the same way)."""
    return {
        # uvloop and httptools when installed (uvicorn[standard] installs both).
        "loop": "auto",
        "http": "auto",
        "log_level": log_level.lower(),
        "log_config": None,  # service.logging renders uvicorn's records as JSON
        "access_log": False,  # the request-context middleware logs one line per request
    }


def serve(
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
) -> None:
    """Run the HTTP API with uvicorn (Swagger UI at /docs)."""
    import uvicorn

    from service.db import create_db_engine, ensure_schema_at_head, head_revision
    from service.errors import SchemaNotAtHeadError
    from service.logging import configure_logging

    settings = Settings()
    configure_logging(settings.log_level)
    log = structlog.get_logger("service.cli")
    if not settings.auth:
        if not _is_loopback(host) and not settings.allow_remote_without_auth:
            err.print(
                f"[red]refusing to serve without auth on {host}[/]: bind 127.0.0.1, enable auth "
                "(SCALING_AUTH=true), or force with SCALING_ALLOW_REMOTE_WITHOUT_AUTH=true"
            )
            raise typer.Exit(2)
        log.warning("auth disabled (dev mode): every caller is admin", host=host)
    engine = create_db_engine(settings.database_url)
    try:
        ensure_schema_at_head(engine, head_revision())
    except SchemaNotAtHeadError as exc:
        err.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from exc
    finally:
        engine.dispose()
    url = f"http://{host}:{port}"
    log.info("serving", url=url, swagger_ui=f"{url}/docs", workers=workers)
    with _multiprocess_metrics(workers):
        uvicorn.run(
            "service.app:create_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            timeout_worker_healthcheck=WORKER_HEALTHCHECK_TIMEOUT_S,
            **uvicorn_options(settings.log_level),
        )


def migrate(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
) -> None:
    """Upgrade the database schema (SCALING_DATABASE_URL) to the latest migration."""
    from alembic import command

    from service.db import alembic_config, create_db_engine

    url = Settings().database_url
    create_db_engine(url).dispose()  # creates the SQLite file's folder
    command.upgrade(alembic_config(url), revision)
    err.print(f"database at {revision}")


def openapi() -> None:
    """Print the OpenAPI document (as committed in openapi/openapi.json)."""
    from service.app import create_app

    app = create_app(Settings(database_url="sqlite://"))
    typer.echo(json.dumps(app.openapi(), indent=2, sort_keys=False))


def webhook_key() -> None:
    """Print a new key for SCALING_WEBHOOK_SECRET_KEY (it encrypts webhook secrets at rest)."""
    from service.webhooks.secrets import new_key

    typer.echo(new_key())


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option(help="Who or what the key is for.")],
    scope: ScopeOption,
) -> None:
    """Create a key and print its token (shown once)."""
    from service import auth

    scopes = [s.value for s in scope]
    with _session() as session:
        row, token = auth.create_key(session, name, scopes)
    err.print(f"created key {row.prefix} ({','.join(scopes)}); the token is shown once:")
    typer.echo(token)


@keys_app.command("list")
def keys_list(json_out: JsonFlag = False) -> None:
    """List keys (never their secrets)."""
    from service import auth

    with _session() as session:
        keys = [_key_out(row) for row in auth.list_keys(session)]
    print_list(keys, KEY_COLUMNS, title="API keys", json_out=json_out)


def _key_out(row: "ApiKey") -> KeyOut:
    """A stored key as GET /v1/keys shows it."""
    return KeyOut(
        prefix=row.prefix,
        name=row.name,
        scopes=row.scopes.split(","),
        created_at=row.created_at,
        revoked_at=row.revoked_at,
    )


@keys_app.command("revoke")
def keys_revoke(prefix: Annotated[str, typer.Argument(help="The key's prefix.")]) -> None:
    """Revoke a key; it stops working at once."""
    from service import auth

    with _session() as session:
        auth.revoke_key(session, prefix)
    err.print(f"revoked {prefix}")


def _session() -> AbstractContextManager[Session]:
    from service.db import create_db_engine, make_session_factory, session_scope

    engine = create_db_engine(Settings().database_url)
    return session_scope(make_session_factory(engine))


def register(app: typer.Typer) -> None:
    """Add the server commands to `app`."""
    app.command()(serve)
    app.command()(migrate)
    app.command()(openapi)
    app.command("webhook-key")(webhook_key)
    app.add_typer(keys_app, name="keys")
