"""Mixed load against `scaling-service serve` (2 workers) on PostgreSQL, with an audit at the end.

Threads with one httpx client each run, for a bounded time, a mix of: ingest a batch of 50
keyed runs, GET the recommendation, list runs, and fit 200 runs with a bootstrap of 20. Prints
throughput, p50/p99 latency per operation and the errors (any non-2xx, or a transport error:
must be 0), then checks that every acknowledged run is in the database exactly once. Usage:

    python bench/load.py [--seconds 20] [--threads 8] [--workers 2] [--postgres URL]

Exits 1 when there were errors or the audit fails.
"""

import argparse
import random
import statistics
import sys
import threading
import time
from collections import defaultdict
from typing import Any

import httpx
import sqlalchemy as sa
from alembic import command

from service.db import alembic_config
from service.testing import scratch_database, serve_in_subprocess

EXPERIMENT = "load"
# Operation mix (weights): mostly reads, like clients polling, with steady ingestion.
MIX = {"ingest": 3, "recommendation": 5, "list_runs": 3, "fit": 1}
BATCH = 50


def grid(tag: str, n: int) -> list[dict[str, Any]]:
    rows = []
    for i in range(n):
        params = 1e7 * 10 ** (2 * random.random())
        tokens = 1e9 * 10 ** (1.5 * random.random())
        loss = 1.7 + 400 / params**0.34 + 410 / tokens**0.28
        rows.append({"run_key": f"{tag}-{i}", "params": params, "tokens": tokens, "loss": loss})
    return rows


class Load:
    def __init__(self, base: str, seconds: float, threads: int) -> None:
        self.base, self.seconds, self.threads = base, seconds, threads
        self.latencies: dict[str, list[float]] = defaultdict(list)
        self.errors: dict[str, list[str]] = defaultdict(list)
        self.acknowledged: set[str] = set()
        self.lock = threading.Lock()

    def _one(self, http: httpx.Client, op: str, worker: int, n: int) -> httpx.Response:
        path = f"/v1/experiments/{EXPERIMENT}"
        if op == "ingest":
            runs = grid(f"w{worker}-{n}", BATCH)
            response = http.post(f"{path}/runs", json={"runs": runs})
            if response.status_code == 201:
                with self.lock:
                    self.acknowledged.update(r["run_key"] for r in runs)
            return response
        if op == "recommendation":
            flops = 10 ** random.uniform(19, 23)
            return http.get(f"{path}/recommendation", params={"flops": flops})
        if op == "list_runs":
            return http.get(f"{path}/runs", params={"limit": 100, "flops_min": 1e18})
        # The 200 seed runs (source "seed"): a fit's cost stays the same as ingestion grows.
        body = {"bootstrap": 20, "seed": n, "filters": {"source": "seed"}}
        return http.post(f"{path}/fits", json=body)

    def worker(self, worker: int, stop_at: float) -> None:
        ops = [op for op, weight in MIX.items() for _ in range(weight)]
        rng = random.Random(worker)
        n = 0
        with httpx.Client(base_url=self.base, timeout=60) as http:
            while time.perf_counter() < stop_at:
                n += 1
                op = rng.choice(ops)
                start = time.perf_counter()
                try:
                    response = self._one(http, op, worker, n)
                    error = None if response.is_success else f"{response.status_code}"
                    if error:
                        error += f" {response.text[:200]}"
                except httpx.HTTPError as exc:
                    error = f"{type(exc).__name__}: {exc}"
                elapsed = time.perf_counter() - start
                with self.lock:
                    self.latencies[op].append(elapsed)
                    if error:
                        self.errors[op].append(error)

    def run(self) -> float:
        stop_at = time.perf_counter() + self.seconds
        started = time.perf_counter()
        threads = [
            threading.Thread(target=self.worker, args=(w, stop_at)) for w in range(self.threads)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return time.perf_counter() - started


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def audit(url: str, acknowledged: set[str]) -> tuple[int, int, int]:
    """(acknowledged missing, keys stored twice, stored keys never acknowledged)."""
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        keys = [
            key
            for (key,) in connection.execute(
                sa.text(
                    "SELECT r.run_key FROM runs r JOIN experiments e ON e.id = r.experiment_id "
                    "WHERE e.name = :name AND r.run_key NOT LIKE 'seed-%'"
                ),
                {"name": EXPERIMENT},
            )
        ]
    engine.dispose()
    stored = set(keys)
    return len(acknowledged - stored), len(keys) - len(stored), len(stored - acknowledged)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    random.seed(0)
    with scratch_database(args.postgres, "scaling_load") as url:
        command.upgrade(alembic_config(url), "head")
        env = {"SCALING_DATABASE_URL": url, "SCALING_AUTH": "false"}
        with serve_in_subprocess(env, workers=args.workers) as base:
            with httpx.Client(base_url=base, timeout=60) as http:
                http.post("/v1/experiments", json={"name": EXPERIMENT}).raise_for_status()
                seed_runs = [{**run, "source": "seed"} for run in grid("seed", 200)]
                http.post(
                    f"/v1/experiments/{EXPERIMENT}/runs", json={"runs": seed_runs}
                ).raise_for_status()
                http.post(f"/v1/experiments/{EXPERIMENT}/fits", json={}).raise_for_status()
            load = Load(base, args.seconds, args.threads)
            wall = load.run()
        missing, doubled, unacknowledged = audit(url, load.acknowledged)

    total = sum(len(v) for v in load.latencies.values())
    errors = sum(len(v) for v in load.errors.values())
    print(
        f"{args.seconds:.0f} s, {args.threads} client threads, {args.workers} workers, PostgreSQL"
    )
    print(f"total {total} requests, {total / wall:,.1f} req/s, errors {errors}")
    print(f"{'operation':16s} {'count':>7s} {'req/s':>8s} {'p50 ms':>8s} {'p99 ms':>8s} errors")
    for op in MIX:
        values = load.latencies.get(op, [])
        if not values:
            continue
        print(
            f"{op:16s} {len(values):7d} {len(values) / wall:8.1f} "
            f"{statistics.median(values) * 1e3:8.1f} {percentile(values, 0.99) * 1e3:8.1f} "
            f"{len(load.errors.get(op, []))}"
        )
    for op, messages in load.errors.items():
        for message in sorted(set(messages))[:5]:
            print(f"  error {op}: {message}")
    print(
        f"audit: {len(load.acknowledged)} runs acknowledged; missing {missing}, "
        f"stored twice {doubled}, stored but never acknowledged {unacknowledged}"
    )
    return 1 if errors or missing or doubled else 0


if __name__ == "__main__":
    sys.exit(main())
