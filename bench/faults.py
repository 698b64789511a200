"""Unlucky and hostile traffic against `scaling-service serve --workers 2` on PostgreSQL.

Three storms, each against a fresh scratch database, auth on:
  retries  every client sends its unkeyed 200-run batch three times at once under one
           Idempotency-Key (a client timing out and retrying): runs stored must equal the
           acknowledged batches x 200;
  fits     inline fits (bootstrap 200 over 2,000 runs) at several times the pool size while
           PostgreSQL is up: 503s must be 0 (a busy process answers 202 or 429 instead);
  bodies   concurrent 31 MB POSTs with a made-up key: the server's resident memory must stay
           flat (401 before a byte is read).

Usage: python bench/faults.py [--workers 2] [--postgres URL]   (exits 1 when a check fails)
"""

import argparse
import math
import random
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from alembic import command

from service.db import alembic_config
from service.testing import scratch_database, serve_process

ADMIN = "ss_faults1_" + "k" * 40
HEADERS = {"Authorization": f"Bearer {ADMIN}"}


def chinchilla_runs(n: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    runs = []
    for _ in range(n):
        params, tokens = 10 ** rng.uniform(7, 10), 10 ** rng.uniform(9, 12)
        loss = (1.8 + 482 / params**0.35 + 2085 / tokens**0.37) * math.exp(rng.gauss(0, 0.01))
        runs.append({"params": params, "tokens": tokens, "loss": loss})
    return runs


def rss_bytes(pid: int) -> int:
    """Resident memory of a process and its children (uvicorn's workers), from /proc."""
    total = 0
    for task in Path(f"/proc/{pid}/task").glob("*"):
        for child in (task / "children").read_text().split():
            total += rss_bytes(int(child))
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            total += int(line.split()[1]) * 1024
    return total


def retries(base: str, clients: int) -> dict[str, Any]:
    with httpx.Client(base_url=base, headers=HEADERS, timeout=120) as http:
        http.post("/v1/experiments", json={"name": "retries"}).raise_for_status()
    batches = {c: chinchilla_runs(200, c) for c in range(clients)}
    answers: dict[int, list[int]] = {c: [] for c in range(clients)}

    def send(job: tuple[int, int]) -> None:
        client, _attempt = job
        headers = {**HEADERS, "Idempotency-Key": f"batch-{client}"}
        with httpx.Client(base_url=base, timeout=120) as http:
            response = http.post(
                "/v1/experiments/retries/runs", json={"runs": batches[client]}, headers=headers
            )
        answers[client].append(response.status_code)

    with ThreadPoolExecutor(clients * 3) as pool:
        list(pool.map(send, [(c, a) for c in range(clients) for a in range(3)]))
    with httpx.Client(base_url=base, headers=HEADERS) as http:
        stored = http.get("/v1/experiments/retries").json()["run_count"]
    acknowledged = sum(201 in statuses for statuses in answers.values())
    statuses = Counter(s for statuses in answers.values() for s in statuses)
    return {"acknowledged_runs": acknowledged * 200, "stored_runs": stored, "statuses": statuses}


def fits(base: str, concurrent: int) -> dict[str, Any]:
    with httpx.Client(base_url=base, headers=HEADERS, timeout=120) as http:
        http.post("/v1/experiments", json={"name": "fits"}).raise_for_status()
        http.post(
            "/v1/experiments/fits/runs", json={"runs": chinchilla_runs(2000, 99)}
        ).raise_for_status()

    def fit(i: int) -> int:
        with httpx.Client(base_url=base, headers=HEADERS, timeout=120) as http:
            body = {"bootstrap": 200, "seed": i}
            return http.post("/v1/experiments/fits/fits", json=body).status_code

    ready: list[float] = []

    def probe() -> None:
        with httpx.Client(base_url=base, timeout=60) as http:
            for _ in range(10):
                started = time.perf_counter()
                assert http.get("/readyz").status_code == 200
                ready.append(time.perf_counter() - started)
                time.sleep(0.2)

    prober = threading.Thread(target=probe)
    prober.start()
    with ThreadPoolExecutor(concurrent) as pool:
        statuses = Counter(pool.map(fit, range(concurrent)))
    prober.join()
    return {"statuses": statuses, "readyz_max_s": max(ready)}


def bodies(base: str, pid: int, concurrent: int, size: int) -> dict[str, Any]:
    body = b'{"runs": [' + b" " * size + b"]}"
    before = rss_bytes(pid)
    peak = before
    done = threading.Event()

    def watch() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, rss_bytes(pid))
            time.sleep(0.02)

    def send(i: int) -> int:
        headers = {"Authorization": "Bearer ss_madeup_secret", "content-type": "application/json"}
        if i % 2:
            headers["Idempotency-Key"] = f"k{i}"
        with httpx.Client(base_url=base, timeout=120) as http:
            try:
                return http.post(
                    "/v1/experiments/x/runs", content=body, headers=headers
                ).status_code
            except httpx.HTTPError:  # the server answered 401 and closed before the upload ended
                return 401

    watcher = threading.Thread(target=watch)
    watcher.start()
    with ThreadPoolExecutor(concurrent) as pool:
        statuses = Counter(pool.map(send, range(concurrent)))
    done.set()
    watcher.join()
    return {"statuses": statuses, "rss_before_mb": before / 2**20, "rss_peak_mb": peak / 2**20}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    with scratch_database(args.postgres, "scaling_faults") as url:
        command.upgrade(alembic_config(url), "head")
        env = {"SCALING_DATABASE_URL": url, "SCALING_BOOTSTRAP_ADMIN_KEY": ADMIN}
        with serve_process(env, workers=args.workers) as (base, process):
            # Bodies first: the fits storm leaves queued fits computing in the background, whose
            # memory would hide (or fake) a body-buffering problem.
            b = bodies(base, process.pid, concurrent=10, size=31 * 2**20)
            r = retries(base, clients=10)
            f = fits(base, concurrent=40)
        engine = sa.create_engine(url)
        with engine.connect() as connection:
            pool_size = connection.execute(sa.text("SHOW max_connections")).scalar()
        engine.dispose()
    print(f"serve --workers {args.workers}, PostgreSQL (max_connections {pool_size})")
    print(
        f"retries: 10 clients x 3 concurrent sends of a 200-run batch under one key: "
        f"acknowledged {r['acknowledged_runs']} runs, stored {r['stored_runs']}; "
        f"answers {dict(r['statuses'])}"
    )
    print(
        f"fits: 40 concurrent inline fits (bootstrap 200, 2,000 runs): answers "
        f"{dict(f['statuses'])}, 503s {f['statuses'].get(503, 0)}; /readyz at most "
        f"{f['readyz_max_s']:.2f} s meanwhile"
    )
    growth = b["rss_peak_mb"] - b["rss_before_mb"]
    print(
        f"bodies: 10 concurrent 31 MB POSTs with a made-up key: answers {dict(b['statuses'])}; "
        f"server RSS {b['rss_before_mb']:.0f} MB before, peak {b['rss_peak_mb']:.0f} MB "
        f"(+{growth:.0f} MB)"
    )
    ok = (
        r["stored_runs"] == r["acknowledged_runs"]
        and f["statuses"].get(503, 0) == 0
        and growth < 50
    )
    print("checks:", "pass" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
