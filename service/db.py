"""Database engine, sessions and the schema-version check.

One place owns commit and rollback: `session_scope` (`read_connection` for reads, which commit
nothing). Routes get a session from a dependency that uses it, so a request's writes are one
transaction.
"""

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry

from service.errors import SchemaNotAtHeadError

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def create_db_engine(url: str, pool_size: int = 5) -> sa.Engine:
    """An engine for `url`; SQLite gets WAL, foreign keys and a busy timeout."""
    if url.startswith("sqlite"):
        database = sa.make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": 30}, json_serializer=_json_dumps)
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    engine = sa.create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_timeout=10,
        json_serializer=_json_dumps,
        connect_args={"connect_timeout": 5},
    )
    ping_idle_connections(engine)
    return engine


# A connection back in the pool for less than this is taken as alive (HikariCP's default
# "alive bypass window"): under load each request is spared a round trip, a fifth of an
# uncached answer's time on PostgreSQL (bench/answer.py).
PING_AFTER_IDLE_S = 0.5
_CHECKED_IN_AT = "checked_in_at"


def ping_idle_connections(engine: sa.Engine) -> None:
    """Test a pooled connection before use when it sat idle for PING_AFTER_IDLE_S or more.

    A dead one (the database restarted, a proxy dropped it) is replaced at checkout, with every
    connection pooled before it, as `pool_pre_ping` would. One used moments ago is not tested:
    if the database went away in those moments the request fails (503, Retry-After), the pool
    is renewed, and the next request connects afresh.
    """

    def checked_in(_dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        record.info[_CHECKED_IN_AT] = time.monotonic()

    def checkout(dbapi_connection: Any, record: ConnectionPoolEntry, _proxy: Any) -> None:
        since = record.info.get(_CHECKED_IN_AT)  # None: connected just now
        if since is None or time.monotonic() - since < PING_AFTER_IDLE_S:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as exc:
            raise sa.exc.InvalidatePoolError(f"idle connection failed its ping: {exc}") from exc

    sa.event.listen(engine, "checkin", checked_in)
    sa.event.listen(engine, "checkout", checkout)


def create_probe_engine(url: str) -> sa.Engine:
    """An engine without a pool, for the readiness probe: it opens its own connection, so it
    never waits behind user requests that hold every pooled one."""
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, poolclass=sa.pool.NullPool, connect_args={"timeout": 5})
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return sa.create_engine(url, poolclass=sa.pool.NullPool, connect_args={"connect_timeout": 5})


def make_session_factory(engine: sa.Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session whose work is committed on success and rolled back on any error."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


# What read-only queries run on: an ORM session, or a bare connection (`read_connection`).
Reader = Session | sa.Connection


@contextmanager
def read_connection(factory: sessionmaker[Session]) -> Iterator[sa.Connection]:
    """A connection of `factory`'s engine for reads only: each statement its own transaction
    (autocommit), nothing to commit at the end, no ORM session unless asked for
    (`factory(bind=connection)`).

    An answer reads one statement's worth. On PostgreSQL, BEGIN and COMMIT would be two more
    round trips, a third of an uncached answer's time (bench/answer.py); its default isolation,
    READ COMMITTED, gives each statement its own snapshot inside a transaction too, so reads see
    nothing less consistent. pysqlite begins a transaction before writes only, so SQLite's reads
    are this way already. A session's own bookkeeping cost as much as the query on SQLite. A
    write here would commit at once: none belongs.
    """
    engine: sa.Engine = factory.kw["bind"]
    with engine.connect() as connection:
        if connection.dialect.name != "sqlite":
            connection.execution_options(isolation_level="AUTOCOMMIT")
        yield connection


def alembic_config(url: str) -> Config:
    """Alembic's configuration for this package's migrations, pointed at `url`."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def head_revision() -> str | None:
    """The latest migration this code ships."""
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def current_revision(engine: sa.Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def ensure_schema_at_head(engine: sa.Engine, head: str | None) -> None:
    """Raise `SchemaNotAtHeadError` unless the database is at `head`, the latest migration."""
    current = current_revision(engine)
    if current != head:
        raise SchemaNotAtHeadError(
            f"database schema is at {current or 'no revision'}, code expects {head}: "
            "run `scaling-service migrate`"
        )
