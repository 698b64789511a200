"""Fixtures: every API test runs on SQLite and on PostgreSQL.

PostgreSQL comes from SCALING_TEST_POSTGRES_URL (default the local server). Unreachable, it fails
the run when CI=true and is skipped with the reason otherwise.
"""

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from fastapi.testclient import TestClient

from service.app import create_app
from service.db import alembic_config
from service.settings import Settings
from service.testing import create_database, drop_database

POSTGRES_URL = os.environ.get(
    "SCALING_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
IN_CI = os.environ.get("CI", "").lower() == "true"
ADMIN_TOKEN = "ss_adminadmin01_" + "s" * 43
EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "data"


def postgres_or_fail() -> str:
    """The server URL, or fail (CI) / skip (elsewhere) saying why."""
    try:
        engine = sa.create_engine(POSTGRES_URL, connect_args={"connect_timeout": 3})
        with engine.connect():
            pass
        engine.dispose()
    except sa.exc.OperationalError as exc:
        reason = f"PostgreSQL unreachable at {POSTGRES_URL}: {exc.orig}"
        if IN_CI:
            pytest.fail(reason)
        pytest.skip(reason)
    return POSTGRES_URL


def create_postgres_database(prefix: str) -> str:
    """A new empty database on the test server; returns its URL."""
    return create_database(postgres_or_fail(), prefix)


def drop_postgres_database(url: str) -> None:
    drop_database(POSTGRES_URL, url)


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[str]:
    """One migrated database per test process; tests truncate it."""
    url = create_postgres_database("scaling_test")
    command.upgrade(alembic_config(url), "head")
    yield url
    drop_postgres_database(url)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite") / "template.db"
    command.upgrade(alembic_config(f"sqlite:///{path}"), "head")
    return path


TABLES = (
    "idempotency_records",
    "jobs",
    "fits",
    "runs",
    "experiments",
    "api_keys",
    "webhook_deliveries",
    "webhook_events",
    "webhook_subscriptions",
)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database of each backend."""
    if request.param == "sqlite":
        path = tmp_path / "scaling.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    url = request.getfixturevalue("postgres_template")
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.execute(sa.text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
    engine.dispose()
    yield url


@pytest.fixture
def settings(database_url: str) -> Settings:
    # No background fit runner: tests drive queued fits with FitRunner.run_once().
    return Settings(
        database_url=database_url,
        auth=True,
        bootstrap_admin_key=ADMIN_TOKEN,
        fit_runner=False,
        refit_debounce_seconds=0,
    )


@pytest.fixture
def app_client(settings: Settings) -> Iterator[TestClient]:
    """A client without credentials."""
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.fixture
def client(app_client: TestClient) -> TestClient:
    """A client holding the bootstrap admin key."""
    app_client.headers["Authorization"] = f"Bearer {ADMIN_TOKEN}"
    return app_client


def make_experiment(client: TestClient, name: str = "exp", **fields: object) -> dict[str, object]:
    response = client.post("/v1/experiments", json={"name": name, **fields})
    assert response.status_code == 201, response.text
    body: dict[str, object] = response.json()
    return body


def grid_runs(prefix: str = "r") -> list[dict[str, object]]:
    """20 keyed runs on a Chinchilla-shaped surface: enough for a quick parametric fit."""
    return [
        {
            "run_key": f"{prefix}{n:.0e}-{d:.0e}",
            "params": n,
            "tokens": d,
            "loss": 1.7 + 400 / n**0.34 + 410 / d**0.28,
        }
        for n in (1e7, 3e7, 1e8, 3e8, 1e9)
        for d in (1e9, 3e9, 1e10, 3e10)
    ]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Slow tests first, longest first (`slow(seconds=...)`; a stable sort keeps the rest in
    order): under xdist a long test that starts last keeps one worker busy for minutes after
    the other has finished."""

    def expected_seconds(item: pytest.Item) -> float:
        marker = item.get_closest_marker("slow")
        return 0.0 if marker is None else float(marker.kwargs.get("seconds", 10))

    items.sort(key=expected_seconds, reverse=True)
    # Tests on a real `mlflow server` run on one xdist worker (`--dist loadgroup`): the server
    # starts once per worker that needs it, and its start costs half a minute of CPU.
    for item in items:
        if "mlflow_url" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.xdist_group("mlflow"))
