"""Recommendation throughput: GET /v1/experiments/{name}/recommendation vs GET /healthz.

Starts `scaling-service serve` (one uvicorn worker, auth on) on loopback, imports the Chinchilla
runs, fits them with 1,000 bootstrap resamples, then drives both endpoints with wrk (Debian's
`wrk` package) for the same duration and connections. Usage:

    python bench/api.py [--seconds 8] [--connections 8] [--postgres URL | --sqlite-only]

Prints requests/s and p50/p99 latency per endpoint and the throughput ratio.
Targets (2 cores): ratio >= 0.6, recommendation p99 < 25 ms.
"""

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import httpx
from alembic import command

from service.db import alembic_config
from service.testing import scratch_database, serve_in_subprocess

DATA = Path(__file__).resolve().parents[1] / "examples" / "data"
TOKEN = "ss_benchadmin01_" + "b" * 40


def wrk(url: str, seconds: int, connections: int) -> tuple[float, float, float]:
    """requests/s, p50 ms, p99 ms."""
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "-H",
            f"Authorization: Bearer {TOKEN}",
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    if "Non-2xx" in out:
        raise RuntimeError(f"errors during the run:\n{out}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]

    def pct(label: str) -> float:
        value, unit = re.search(rf"{label}%\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
        return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]

    return rps, pct("50"), pct("99")


def bench(label: str, url: str, seconds: int, connections: int) -> None:
    command.upgrade(alembic_config(url), "head")
    env = {
        "SCALING_DATABASE_URL": url,
        "SCALING_AUTH": "true",
        "SCALING_BOOTSTRAP_ADMIN_KEY": TOKEN,
        "SCALING_FIT_INLINE_MAX_BOOTSTRAP": "4000",
        "SCALING_FIT_RUNNER": "false",
    }
    name = f"chinchilla-{uuid.uuid4().hex[:6]}"
    path = f"/v1/experiments/{name}/recommendation?flops=1e24"
    results = {}
    with serve_in_subprocess(env) as base:
        client = httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=120
        )
        client.post("/v1/experiments", json={"name": name}).raise_for_status()
        client.post(
            f"/v1/experiments/{name}/runs:import",
            content=(DATA / "kyo_chinchilla_llm_df.csv").read_text(),
            headers={"content-type": "text/csv"},
        ).raise_for_status()
        client.post(f"/v1/experiments/{name}/fits", json={"bootstrap": 1000}).raise_for_status()
        client.get(path).raise_for_status()
        results["healthz"] = wrk(f"{base}/healthz", seconds, connections)
        results["recommendation"] = wrk(base + path, seconds, connections)
    # The same question with the answer cache off: every request reads the database and
    # recomputes from the cached fit (1,000 bootstrap samples).
    with serve_in_subprocess({**env, "SCALING_ANSWER_CACHE_SECONDS": "0"}) as base:
        httpx.get(base + path, headers={"Authorization": f"Bearer {TOKEN}"}).raise_for_status()
        results["recommendation, no answer cache"] = wrk(base + path, seconds, connections)
    trivial = results["healthz"][0]
    for what, (rps, p50, p99) in results.items():
        print(
            f"{label:10s} {what:31s} {rps:7.0f} req/s ({rps / trivial:4.2f} of healthz)   "
            f"p50 {p50:6.2f} ms   p99 {p99:6.2f} ms"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--sqlite-only", action="store_true")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt-get install wrk")
    with tempfile.TemporaryDirectory() as folder:
        bench("sqlite", f"sqlite:///{Path(folder) / 'api.db'}", args.seconds, args.connections)
    if args.sqlite_only:
        return
    with scratch_database(args.postgres, "scaling_bench") as url:
        bench("postgresql", url, args.seconds, args.connections)


if __name__ == "__main__":
    main()
