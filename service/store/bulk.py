"""Bulk insert of run rows in few statements, returning (id, run_key) of each row stored.

Rows whose run_key another transaction stored meanwhile are skipped (ON CONFLICT DO NOTHING), so
callers learn which keys they lost. On PostgreSQL the rows go in by `COPY`, the fastest way in,
in the caller's transaction (all or nothing, as before):

- first straight into `runs`, with ids taken from its sequence beforehand (COPY returns
  nothing), inside a savepoint. A batch of new keys, the usual case, costs what COPY of the same
  rows costs (bench/ingest.py);
- if a key is already stored, that COPY fails with a unique violation and the savepoint undoes
  it; the rows then go by `COPY` into a temporary table and one `INSERT ... SELECT ... ON
  CONFLICT DO NOTHING RETURNING` from it (twice as fast as the array `unnest` insert it replaced).
"""

import operator
from datetime import UTC, datetime
from typing import Any

import psycopg
import sqlalchemy as sa
from sqlalchemy.orm import Session

from service.store.models import Run, RunCurve

RUNS = Run.metadata.tables[Run.__tablename__]
RUN_CURVES = RunCurve.metadata.tables[RunCurve.__tablename__]
CHUNK = 5000

_COLUMNS = {
    "run_key": "text",
    "params": "float8",
    "tokens": "float8",
    "flops": "float8",
    "flops_derived": "boolean",
    "loss": "float8",
    "unique_tokens": "float8",
    "seed": "int8",
    "hyperparameters": "text",
    "metadata": "text",
    "source": "text",
    "body_hash": "text",
    "loss_provenance": "text",
    "cooldown_fraction": "float8",
    "trunk_key": "text",
    "curve_points": "int4",
}
_JSON_COLUMNS = ("hyperparameters", "metadata")

# One per database session (pooled connections keep it), emptied at each commit; `ord` keeps the
# rows' order, so ids follow it.
_PG_STAGING = (
    "CREATE TEMPORARY TABLE IF NOT EXISTS runs_incoming (ord int8, "
    + ", ".join(f"{column} {kind}" for column, kind in _COLUMNS.items())
    + ") ON COMMIT DELETE ROWS"
)
_PG_COPY = f"COPY runs_incoming (ord, {', '.join(_COLUMNS)}) FROM STDIN"
_PG_INSERT = (
    "INSERT INTO runs (experiment_id, excluded, created_at, updated_at, "
    + ", ".join(_COLUMNS)
    + ") SELECT %(experiment_id)s, false, %(now)s, %(now)s, "
    + ", ".join(f"t.{c}::jsonb" if c in _JSON_COLUMNS else f"t.{c}" for c in _COLUMNS)
    + " FROM runs_incoming AS t ORDER BY t.ord ON CONFLICT DO NOTHING RETURNING id, run_key"
)


# Ids for new rows, ascending (rows without a run_key map to them in order), from the sequence
# `runs.id` draws from, looked up once: in the select list it was looked up per row, a fifth of
# the COPY's time.
_PG_NEW_IDS = (
    "SELECT nextval(sequence) AS id FROM CAST(pg_get_serial_sequence('runs', 'id') AS regclass) "
    "AS sequence, generate_series(1, %s) ORDER BY id"
)
_PG_COPY_RUNS = (
    f"COPY runs (id, experiment_id, excluded, created_at, updated_at, {', '.join(_COLUMNS)}) "
    "FROM STDIN"
)

# One C-level call per row, in _COLUMNS order (JSON columns arrive already encoded).
_COLUMN_VALUES = operator.itemgetter(*_COLUMNS)


def _insert_postgresql(
    session: Session, experiment_id: int, now: datetime, rows: list[dict[str, Any]]
) -> list[tuple[int, str | None]]:
    # psycopg's own connection, inside the session's transaction (COPY has no SQLAlchemy form).
    connection = session.connection().connection.driver_connection
    assert connection is not None
    with connection.cursor() as cursor:
        cursor.execute(_PG_NEW_IDS, (len(rows),))
        ids = [run_id for (run_id,) in cursor.fetchall()]
        try:
            # In the session's transaction psycopg makes this block a savepoint.
            with connection.transaction(), cursor.copy(_PG_COPY_RUNS) as copy:
                for run_id, row in zip(ids, rows, strict=True):
                    copy.write_row((run_id, experiment_id, False, now, now, *_COLUMN_VALUES(row)))
        except psycopg.errors.UniqueViolation:
            pass  # a key is stored already (the ids drawn stay unused: ids are never reused)
        else:
            return [(run_id, row["run_key"]) for run_id, row in zip(ids, rows, strict=True)]
        cursor.execute(_PG_STAGING)
        cursor.execute("DELETE FROM runs_incoming")  # an earlier call in this transaction
        with cursor.copy(_PG_COPY) as copy:
            for order, row in enumerate(rows):
                copy.write_row((order, *_COLUMN_VALUES(row)))
        cursor.execute(_PG_INSERT, {"experiment_id": experiment_id, "now": now})
        return [(run_id, key) for run_id, key in cursor.fetchall()]


_SQLITE_COLUMNS = ("experiment_id", "excluded", "created_at", "updated_at", *_COLUMNS)
_SQLITE_INSERT = (
    f"INSERT OR IGNORE INTO runs ({', '.join(_SQLITE_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in _SQLITE_COLUMNS)})"
)


def _insert_sqlite(
    session: Session, experiment_id: int, now: datetime, rows: list[dict[str, Any]]
) -> list[tuple[int, str | None]]:
    """The driver's own executemany, without SQLAlchemy's per-value processing.

    SQLite lets one writer at a time hold the database: once this transaction holds the write
    lock, every row above the largest id it reads is one the statement stored. Ids follow the
    rows' order but not densely (`runs` is AUTOINCREMENT, and a row skipped by OR IGNORE may use
    up an id), so with rows skipped the stored ones are read back.
    """
    # SQLAlchemy's storage format for DateTime on SQLite, so the ORM reads these back.
    stamp = now.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    fixed = (experiment_id, False, stamp, stamp)
    values = [fixed + _COLUMN_VALUES(row) for row in rows]
    connection = session.connection().connection.driver_connection
    assert connection is not None
    if not connection.in_transaction:
        # The sqlite3 module begins a transaction only at the first write, so take the write
        # lock first: another writer could otherwise add rows between the read and the insert.
        connection.execute("BEGIN IMMEDIATE")
    (largest_before,) = connection.execute("SELECT coalesce(max(id), 0) FROM runs").fetchone()
    before = connection.total_changes
    connection.executemany(_SQLITE_INSERT, values)
    stored = connection.total_changes - before
    if stored == 0:
        return []
    if stored == len(rows):  # nothing skipped: the ids are the rows' own, in order
        last = connection.execute("SELECT last_insert_rowid()").fetchone()[0]
        return [(last - stored + 1 + i, row["run_key"]) for i, row in enumerate(rows)]
    result = session.execute(
        sa.select(RUNS.c.id, RUNS.c.run_key).where(RUNS.c.id > largest_before).order_by(RUNS.c.id)
    )
    return [(run_id, key) for run_id, key in result]


def insert_runs(
    session: Session, experiment_id: int, now: datetime, rows: list[dict[str, Any]]
) -> list[tuple[int, str | None]]:
    """Insert `rows` (dicts keyed by the columns of `_COLUMNS`, the JSON columns as JSON text);
    return (id, run_key) of each row stored.

    Ids come back in insertion order within each statement, so rows without a run_key map to
    the ascending ids returned for them.
    """
    if session.get_bind().dialect.name == "postgresql":
        return _insert_postgresql(session, experiment_id, now, rows)  # COPY takes any number
    stored: list[tuple[int, str | None]] = []
    for start in range(0, len(rows), CHUNK):
        stored.extend(_insert_sqlite(session, experiment_id, now, rows[start : start + CHUNK]))
    return stored


def insert_curves(session: Session, curves: list[dict[str, Any]]) -> None:
    """Store curves (dicts of run_id, points, tokens and loss as packed bytes) in statements of
    at most ~8 MB of arrays each."""
    batch: list[dict[str, Any]] = []
    size = 0
    for curve in curves:
        batch.append(curve)
        size += 16 * curve["points"]
        if size >= 8_000_000:
            session.execute(RUN_CURVES.insert(), batch)
            batch, size = [], 0
    if batch:
        session.execute(RUN_CURVES.insert(), batch)
