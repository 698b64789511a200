"""A real server on a loopback port (uvicorn in a thread) and clients of it."""

import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from service.app import create_app
from service.client import RetryPolicy, ScalingClient
from service.scaling import preset
from service.settings import Settings
from service.testing import live_server, serve_app
from service.worker.executors.simulated import SimulatedExecutor
from service.worker.loop import Worker
from tests.conftest import ADMIN_TOKEN, EXAMPLES

EPOCH_CSV = EXAMPLES / "epoch_chinchilla_svg_extracted_data.csv"
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


@dataclass
class JobServer:
    """A live server and a simulated worker over its database, ticked by the test."""

    url: str
    app: FastAPI

    def worker(self, name: str = "sim") -> Worker:
        state: Any = self.app.state
        executor = SimulatedExecutor(preset("epoch-2024").law, "epoch-2024", noise=0.01)
        return Worker(state.session_factory, executor, state.fit_policy, worker_id=name)


@pytest.fixture
def job_server(tmp_path: Path, sqlite_template: Path) -> Iterator[JobServer]:
    path = tmp_path / "scaling.db"
    shutil.copy(sqlite_template, path)
    app = create_app(server_settings(f"sqlite:///{path}"))
    with serve_app(app) as url:
        yield JobServer(url, app)


@contextmanager
def ticking(server: JobServer, every: float = 0.05) -> Iterator[None]:
    """A simulated worker ticking in a thread while the block runs."""
    worker = server.worker()
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            worker.tick()
            stop.wait(every)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=30)
        worker.shutdown()
