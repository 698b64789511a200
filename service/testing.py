"""Helpers for tests and benchmarks: a real uvicorn server on a free loopback port, in a thread."""

import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import sqlalchemy as sa
import uvicorn
from fastapi import FastAPI

from service.app import create_app
from service.settings import Settings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def live_server(settings: Settings) -> Iterator[str]:
    """Serve the app; yields its base URL and stops it on exit."""
    with serve_app(create_app(settings)) as url:
        yield url


@contextmanager
def serve_app(app: FastAPI) -> Iterator[str]:
    """Serve an app already made (its `app.state` stays at hand, e.g. for an in-test worker)."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)


def wait_until_ok(
    url: str, timeout: float, gone: Callable[[], bool] = lambda: False, interval: float = 0.1
) -> None:
    """Poll `url` until it answers 200; RuntimeError after `timeout` s or once `gone()`."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline or gone():
            raise RuntimeError(f"{url} did not answer within {timeout:g} s")
        time.sleep(interval)


@contextmanager
def serve_in_subprocess(
    env: dict[str, str],
    workers: int = 1,
    stderr_path: Path | None = None,
    *,
    start_timeout: float = 120,
) -> Iterator[str]:
    """`scaling-service serve` in its own process (its own GIL), for benchmarks; yields the URL.
    With `stderr_path`, the server's log lines go to that file."""
    with serve_process(env, workers, stderr_path, start_timeout=start_timeout) as (base, _):
        yield base


@contextmanager
def serve_process(
    env: dict[str, str],
    workers: int = 1,
    stderr_path: Path | None = None,
    *,
    start_timeout: float = 120,
) -> Iterator[tuple[str, "subprocess.Popen[bytes]"]]:
    """`serve_in_subprocess`, also yielding the process (to signal it)."""
    port = free_port()
    stderr = None if stderr_path is None else stderr_path.open("ab")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "service.cli.main",
            "serve",
            "--port",
            str(port),
            "--workers",
            str(workers),
        ],
        env={**os.environ, "SCALING_LOG_LEVEL": "warning", **env},
        stderr=stderr,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_ok(f"{base}/healthz", start_timeout, gone=lambda: process.poll() is not None)
        yield base, process
    finally:
        process.terminate()
        process.wait(timeout=30)
        if stderr is not None:
            stderr.close()


def create_database(server_url: str, prefix: str) -> str:
    """A new, empty PostgreSQL database on the server of `server_url`; returns its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return sa.make_url(server_url).set(database=name).render_as_string(hide_password=False)


def drop_database(server_url: str, url: str) -> None:
    """Drop the database of `url` (made by create_database), closing its connections."""
    engine = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        name = sa.make_url(url).database
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


@contextmanager
def scratch_database(server_url: str, prefix: str) -> Iterator[str]:
    """A throw-away PostgreSQL database for a benchmark or a test; dropped on exit."""
    url = create_database(server_url, prefix)
    try:
        yield url
    finally:
        drop_database(server_url, url)
