"""Ingest throughput: a 10,000-run batch through the HTTP API vs the database's own bulk load.

The baselines write the same rows (same columns, values and JSON) to the same table of the same
database in one transaction, measured in the same run, alternating with the API; their rows are
built before the clock starts, so they time the database alone:

- PostgreSQL: `COPY runs (...) FROM STDIN` through psycopg 3 (`cursor.copy`, one `write_row`
  per run), the fastest way to load rows;
- SQLite: `executemany` of one INSERT with the sqlite3 module.

The API path does everything a real batch needs on top: HTTP, JSON validation, per-run body
hashes, the run_key lookup, all-or-nothing and the per-run answer. Usage:

    python bench/ingest.py [--runs 10000] [--repeats 5] [--postgres URL] [--sqlite-only]

Prints, per backend, the median runs/s of each path and api/baseline.
Targets (issue #16): api/COPY >= 0.5 on PostgreSQL, api/executemany >= 0.7 on SQLite.
"""

import argparse
import hashlib
import sqlite3
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import psycopg
import sqlalchemy as sa
from alembic import command

from service.db import alembic_config
from service.testing import scratch_database, serve_in_subprocess

COLUMNS = (
    "experiment_id",
    "run_key",
    "params",
    "tokens",
    "flops",
    "flops_derived",
    "loss",
    "unique_tokens",
    "seed",
    "hyperparameters",
    "metadata",
    "source",
    "body_hash",
    "excluded",
    "created_at",
    "updated_at",
)
START_TIMEOUT_S = 120  # a loaded machine starts servers slowly


def batch(n: int, tag: str) -> list[dict[str, Any]]:
    return [
        {
            "run_key": f"{tag}-{i}",
            "params": 1e6 * (1 + i % 97),
            "tokens": 2e7 * (1 + i % 13),
            "loss": 2.5 + (i % 101) * 1e-3,
            "seed": i,
            "hyperparameters": {"lr": 3e-4},
            "metadata": {"sweep": tag},
        }
        for i in range(n)
    ]


def rows_of(experiment_id: int, runs: list[dict[str, Any]], now: Any) -> list[tuple[Any, ...]]:
    """The table rows the API stores for `runs` (body hashes made up: the baseline does not
    compute them), in COLUMNS order."""
    return [
        (
            experiment_id,
            run["run_key"],
            run["params"],
            run["tokens"],
            6 * run["params"] * run["tokens"],
            True,
            run["loss"],
            None,
            run["seed"],
            orjson.dumps(run["hyperparameters"]).decode(),
            orjson.dumps(run["metadata"]).decode(),
            "api",
            hashlib.sha256(run["run_key"].encode()).hexdigest(),
            False,
            now,
            now,
        )
        for run in runs
    ]


def copy_postgresql(url: str, experiment_id: int, runs: list[dict[str, Any]]) -> float:
    conninfo = sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    rows = rows_of(experiment_id, runs, datetime.now(UTC))
    with psycopg.connect(conninfo) as connection:
        start = time.perf_counter()
        statement = f"COPY runs ({', '.join(COLUMNS)}) FROM STDIN"
        with connection.cursor() as cursor, cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row(row)
        connection.commit()
        return time.perf_counter() - start


def executemany_sqlite(path: str, experiment_id: int, runs: list[dict[str, Any]]) -> float:
    # SQLAlchemy's storage format for DateTime on SQLite, as the service writes it.
    rows = rows_of(experiment_id, runs, datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f"))
    connection = sqlite3.connect(path)
    try:
        start = time.perf_counter()
        with connection:  # one transaction
            connection.executemany(
                f"INSERT INTO runs ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})",
                rows,
            )
        return time.perf_counter() - start
    finally:
        connection.close()


def bench_backend(label: str, url: str, n: int, repeats: int) -> None:
    command.upgrade(alembic_config(url), "head")
    engine = sa.create_engine(url)
    api_times, base_times = [], []
    with (
        serve_in_subprocess(
            {"SCALING_DATABASE_URL": url, "SCALING_AUTH": "false"}, start_timeout=START_TIMEOUT_S
        ) as base,
        httpx.Client(base_url=base, timeout=120) as client,
    ):
        name = f"bench-{uuid.uuid4().hex[:8]}"
        client.post("/v1/experiments", json={"name": name}).raise_for_status()
        client.post("/v1/experiments", json={"name": name + "-base"}).raise_for_status()
        with engine.connect() as connection:
            base_id = connection.execute(
                sa.text("SELECT id FROM experiments WHERE name = :n"), {"n": name + "-base"}
            ).scalar_one()
        engine.dispose()
        for repeat in range(repeats):
            # Encoded before the clock starts, as the baselines' rows are built before theirs.
            body = orjson.dumps({"runs": batch(n, f"r{repeat}")})
            start = time.perf_counter()
            response = client.post(
                f"/v1/experiments/{name}/runs",
                content=body,
                headers={"content-type": "application/json"},
            )
            api_times.append(time.perf_counter() - start)
            assert response.status_code == 201 and response.json()["created"] == n
            runs = batch(n, f"base{repeat}")
            if label == "postgresql":
                base_times.append(copy_postgresql(url, base_id, runs))
            else:
                base_times.append(
                    executemany_sqlite(sa.make_url(url).database or "", base_id, runs)
                )
    api, baseline = statistics.median(api_times), statistics.median(base_times)
    what = "COPY" if label == "postgresql" else "executemany"
    print(
        f"{label:10s} api {n / api:9,.0f} runs/s ({api:.3f} s per {n}-run batch)   "
        f"{what} {n / baseline:9,.0f} runs/s ({baseline:.3f} s)   "
        f"api/{what} = {baseline / api:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--sqlite-only", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        bench_backend("sqlite", f"sqlite:///{Path(folder) / 'bench.db'}", args.runs, args.repeats)
    if args.sqlite_only:
        return
    with scratch_database(args.postgres, "scaling_bench") as url:
        bench_backend("postgresql", url, args.runs, args.repeats)


if __name__ == "__main__":
    main()
