"""PostgreSQL connections: tested before use only after sitting idle (service.db.PING_AFTER_IDLE_S),
so busy traffic pays no extra round trip, and a connection that died while idle is replaced."""

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from service import db
from tests.conftest import postgres_or_fail


@pytest.fixture
def engine() -> Iterator[sa.Engine]:
    engine = db.create_db_engine(postgres_or_fail(), pool_size=1)
    yield engine
    engine.dispose()


@pytest.fixture
def pings(engine: sa.Engine, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    seen: list[Any] = []
    ping = engine.dialect.do_ping

    def counted(dbapi_connection: Any) -> bool:
        seen.append(dbapi_connection)
        return ping(dbapi_connection)

    monkeypatch.setattr(engine.dialect, "do_ping", counted)
    return seen


def backend_pid(engine: sa.Engine) -> int:
    with engine.connect() as connection:
        pid: int = connection.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
        return pid


def terminate(pid: int) -> None:
    other = sa.create_engine(postgres_or_fail(), poolclass=sa.pool.NullPool)
    with other.connect() as connection:
        connection.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    other.dispose()


def test_a_connection_used_moments_ago_is_not_pinged(engine: sa.Engine, pings: list[Any]) -> None:
    first = backend_pid(engine)
    for _ in range(5):
        assert backend_pid(engine) == first
    assert pings == []


def test_an_idle_connection_is_pinged_and_replaced_when_dead(
    engine: sa.Engine, pings: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    first = backend_pid(engine)
    monkeypatch.setattr(db, "PING_AFTER_IDLE_S", 0.0)  # every pooled connection counts as idle
    assert backend_pid(engine) == first
    assert len(pings) == 1

    terminate(first)
    # The ping finds it dead: a new connection answers, and the request never sees an error.
    second = backend_pid(engine)
    assert second != first
    assert len(pings) == 2


def test_a_connection_that_died_moments_ago_fails_one_request_then_the_pool_renews(
    engine: sa.Engine, pings: list[Any]
) -> None:
    first = backend_pid(engine)
    terminate(first)
    with pytest.raises(sa.exc.DBAPIError) as failed:
        backend_pid(engine)
    assert failed.value.connection_invalidated
    assert backend_pid(engine) != first
    assert pings == []
