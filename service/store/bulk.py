"""Bulk insert of run rows in few statements, returning (id, run_key) of each row stored.

Rows whose run_key another transaction stored meanwhile are skipped (ON CONFLICT DO NOTHING), so
callers learn which keys they lost. PostgreSQL gets one `INSERT ... SELECT FROM unnest(arrays)`
per chunk: a short statement with array parameters, which psycopg sends in binary, instead of a
VALUES list with hundreds of thousands of placeholders that the driver must parse.
"""

import operator
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from service.store.models import Run, RunCurve

RUNS = Run.metadata.tables[Run.__tablename__]
RUN_CURVES = RunCurve.metadata.tables[RunCurve.__tablename__]
CHUNK = 5000

_ARRAYS = {
    "run_key": "text[]",
    "params": "float8[]",
    "tokens": "float8[]",
    "flops": "float8[]",
    "flops_derived": "boolean[]",
    "loss": "float8[]",
    "unique_tokens": "float8[]",
    "seed": "int8[]",
    "hyperparameters": "text[]",
    "metadata": "text[]",
    "source": "text[]",
    "body_hash": "text[]",
    "loss_provenance": "text[]",
    "cooldown_fraction": "float8[]",
    "trunk_key": "text[]",
    "curve_points": "int4[]",
}
_JSON_COLUMNS = ("hyperparameters", "metadata")

_PG_INSERT = sa.text(
    "INSERT INTO runs (experiment_id, excluded, created_at, updated_at, "
    + ", ".join(_ARRAYS)
    + ") SELECT :experiment_id, false, :now, :now, "
    + ", ".join(f"t.{c}::jsonb" if c in _JSON_COLUMNS else f"t.{c}" for c in _ARRAYS)
    + " FROM unnest("
    + ", ".join(f"CAST(:{c} AS {kind})" for c, kind in _ARRAYS.items())
    + ") WITH ORDINALITY AS t("
    + ", ".join(_ARRAYS)
    + ", ord) ORDER BY t.ord ON CONFLICT DO NOTHING RETURNING id, run_key"
)


# One C-level call per row, in _ARRAYS order (JSON columns arrive already encoded).
_COLUMN_VALUES = operator.itemgetter(*_ARRAYS)


def _insert_postgresql(
    session: Session, experiment_id: int, now: datetime, rows: list[dict[str, Any]]
) -> list[tuple[int, str | None]]:
    parameters: dict[str, Any] = {"experiment_id": experiment_id, "now": now}
    for column in _ARRAYS:
        parameters[column] = [row[column] for row in rows]
    return [(run_id, key) for run_id, key in session.execute(_PG_INSERT, parameters)]


_SQLITE_COLUMNS = ("experiment_id", "excluded", "created_at", "updated_at", *_ARRAYS)
_SQLITE_INSERT = (
    f"INSERT OR IGNORE INTO runs ({', '.join(_SQLITE_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in _SQLITE_COLUMNS)})"
)


def _insert_sqlite(
    session: Session, experiment_id: int, now: datetime, rows: list[dict[str, Any]]
) -> list[tuple[int, str | None]]:
    """The driver's own executemany, without SQLAlchemy's per-value processing.

    SQLite lets one writer at a time hold the database, and gives an INTEGER PRIMARY KEY row
    max(id) + 1, so the rows this statement stored hold the last `changes` ids exactly.
    """
    # SQLAlchemy's storage format for DateTime on SQLite, so the ORM reads these back.
    stamp = now.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    fixed = (experiment_id, False, stamp, stamp)
    values = [fixed + _COLUMN_VALUES(row) for row in rows]
    connection = session.connection().connection.driver_connection
    assert connection is not None
    before = connection.total_changes
    connection.executemany(_SQLITE_INSERT, values)
    stored = connection.total_changes - before
    if stored == 0:
        return []
    last = connection.execute("SELECT last_insert_rowid()").fetchone()[0]
    if stored == len(rows):  # nothing skipped: ids follow the rows' order
        return [(last - stored + 1 + i, row["run_key"]) for i, row in enumerate(rows)]
    result = session.execute(
        sa.select(RUNS.c.id, RUNS.c.run_key).where(RUNS.c.id.between(last - stored + 1, last))
    )
    return [(run_id, key) for run_id, key in result]


def insert_runs(
    session: Session, experiment_id: int, now: datetime, rows: list[dict[str, Any]]
) -> list[tuple[int, str | None]]:
    """Insert `rows` (dicts keyed by the columns of `_ARRAYS`, the JSON columns as JSON text);
    return (id, run_key) of each row stored.

    Ids come back in insertion order within each statement, so rows without a run_key map to
    the ascending ids returned for them.
    """
    insert = (
        _insert_postgresql if session.get_bind().dialect.name == "postgresql" else _insert_sqlite
    )
    stored: list[tuple[int, str | None]] = []
    for start in range(0, len(rows), CHUNK):
        stored.extend(insert(session, experiment_id, now, rows[start : start + CHUNK]))
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
