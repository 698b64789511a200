"""A real server on a loopback port (uvicorn in a thread) and clients of it."""

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from service.client import RetryPolicy, ScalingClient
from service.settings import Settings
from service.testing import live_server
from tests.conftest import ADMIN_TOKEN, SHARED

EPOCH_CSV = SHARED / "data" / "epoch_chinchilla_svg_extracted_data.csv"
# Epoch's reference refit drops the 5 highest-loss rows (shared/reference/scaling-laws.md).
EPOCH_MAX_LOSS = 3.446995
FAST_RETRY = RetryPolicy(attempts=3, backoff=0.01, max_wait=0.2)


def server_settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        auth=True,
        bootstrap_admin_key=ADMIN_TOKEN,
        fit_runner=True,  # background fits run, so wait_for sees them finish
        refit_debounce_seconds=0,
        log_level="warning",
    )


@pytest.fixture
def server(database_url: str) -> Iterator[str]:
    """The app on SQLite and on PostgreSQL, over real HTTP."""
    with live_server(server_settings(database_url)) as url:
        yield url


@pytest.fixture
def sqlite_server(tmp_path: Path, sqlite_template: Path) -> Iterator[str]:
    """The app on SQLite only, for tests about the client rather than the database."""
    path = tmp_path / "scaling.db"
    shutil.copy(sqlite_template, path)
    with live_server(server_settings(f"sqlite:///{path}")) as url:
        yield url


@pytest.fixture
def api(sqlite_server: str) -> Iterator[ScalingClient]:
    with ScalingClient(sqlite_server, ADMIN_TOKEN, retry=FAST_RETRY) as client:
        yield client


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
