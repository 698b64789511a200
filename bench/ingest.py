"""Ingest throughput: a 10,000-run batch through the HTTP API vs a raw SQLAlchemy Core insert.

Both paths write the same rows to the same kind of database in the same run, so the ratio is
meaningful on a noisy machine. Usage:

    python bench/ingest.py [--runs 10000] [--repeats 5] [--postgres URL]

Prints, per backend, the median runs/s of each path and api/raw. Target: ratio >= 0.5 and a
10k batch in under 2 s.
"""

import argparse
import hashlib
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from alembic import command

from service.db import alembic_config
from service.store.models import Run
from service.testing import scratch_database, serve_in_subprocess

RUNS: sa.Table = Run.__table__  # type: ignore[assignment]


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


def raw_insert(engine: sa.Engine, experiment_id: int, runs: list[dict[str, Any]]) -> float:
    now = datetime.now(UTC)
    rows = [
        {
            **run,
            "experiment_id": experiment_id,
            "flops": 6 * run["params"] * run["tokens"],
            "flops_derived": True,
            "unique_tokens": None,
            "source": "bench",
            "body_hash": hashlib.sha256(run["run_key"].encode()).hexdigest(),
            "excluded": False,
            "excluded_reason": None,
            "created_at": now,
            "updated_at": now,
        }
        for run in runs
    ]
    start = time.perf_counter()
    with engine.begin() as connection:
        connection.execute(sa.insert(RUNS), rows)
    return time.perf_counter() - start


def bench_backend(label: str, url: str, n: int, repeats: int) -> None:
    command.upgrade(alembic_config(url), "head")
    engine = sa.create_engine(url)
    api_times, raw_times = [], []
    with (
        serve_in_subprocess({"SCALING_DATABASE_URL": url, "SCALING_AUTH": "false"}) as base,
        httpx.Client(base_url=base, timeout=120) as client,
    ):
        name = f"bench-{uuid.uuid4().hex[:8]}"
        client.post("/v1/experiments", json={"name": name}).raise_for_status()
        client.post("/v1/experiments", json={"name": name + "-raw"}).raise_for_status()
        with engine.connect() as connection:
            raw_id = connection.execute(
                sa.text("SELECT id FROM experiments WHERE name = :n"), {"n": name + "-raw"}
            ).scalar_one()
        for repeat in range(repeats):
            runs = batch(n, f"r{repeat}")
            start = time.perf_counter()
            response = client.post(f"/v1/experiments/{name}/runs", json={"runs": runs})
            api_times.append(time.perf_counter() - start)
            assert response.status_code == 201 and response.json()["created"] == n
            raw_times.append(raw_insert(engine, raw_id, batch(n, f"raw{repeat}")))
    engine.dispose()
    api, raw = statistics.median(api_times), statistics.median(raw_times)
    print(
        f"{label:10s} api {n / api:10,.0f} runs/s ({api:.3f} s per {n}-run batch)   "
        f"raw {n / raw:10,.0f} runs/s ({raw:.3f} s)   api/raw = {raw / api:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        bench_backend("sqlite", f"sqlite:///{Path(folder) / 'bench.db'}", args.runs, args.repeats)
    with scratch_database(args.postgres, "scaling_bench") as url:
        bench_backend("postgresql", url, args.runs, args.repeats)


if __name__ == "__main__":
    main()
