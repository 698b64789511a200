"""HTTP throughput: the service's endpoints against a bare FastAPI hello world, same run.

Starts three servers on loopback, each one uvicorn worker with the same uvicorn options
(`service.cli.server.uvicorn_options`: uvloop and httptools): the bare app (bench/bare_app.py),
`scaling-service serve` (auth on) holding the Chinchilla runs fitted with 1,000 bootstrap
resamples, and the same service with the answer cache off. Then wrk (Debian's `wrk` package;
one thread) drives, round after round so that a noisy machine slows every target alike:

- bare:     GET /  on the bare app (the baseline)
- healthz:  GET /healthz
- cached:   GET /v1/experiments/{name}/recommendation?flops=1e24 (answer cache on)
- uncached: the same request with the answer cache off (reads the database, recomputes the
            answer from the cached fit's 1,000 bootstrap samples); requests that arrive while
            the same answer is being computed share that computation
- distinct: the answer cache off, and every request a budget of its own (1e24 FLOPs and a
            hair more each time): each request computes its own answer

Usage:

    python bench/api.py [--seconds 5] [--rounds 3] [--connections 8] [--postgres URL]
                        [--sqlite-only]

Prints the median requests/s and p50/p99 latency of each target over the rounds, and the ratios.
Targets (issue #16): cached >= 0.8 of bare, uncached >= 0.6 of healthz, p99 < 10 ms.
"""

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
from alembic import command

from service.db import alembic_config
from service.testing import free_port, scratch_database, serve_in_subprocess, wait_until_ok

BENCH = Path(__file__).resolve().parent
DATA = BENCH.parent / "examples" / "data"
TOKEN = "ss_benchadmin01_" + "b" * 40
START_TIMEOUT_S = 120  # a loaded machine starts servers slowly


# Every request a budget of its own (1e24 FLOPs and a hair more each time): no two share an
# answer, so none is served by another request's computation.
DISTINCT_BUDGETS = """
counter = 0
request = function()
  counter = counter + 1
  local flops = string.format("%de15", 1000000000 + counter)  -- no "+": a query reads it as " "
  local path = wrk.path:gsub("flops=[^&]*", "flops=" .. flops)
  return wrk.format(nil, path)
end
"""


def wrk(
    url: str, seconds: int, connections: int, script: str | None = None
) -> tuple[float, float, float]:
    """requests/s, p50 ms, p99 ms."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as lua:  # an empty script: plain GETs
        lua.write(script or "")
        lua.flush()
        out = subprocess.run(
            [
                "wrk",
                "-t1",
                f"-c{connections}",
                f"-d{seconds}s",
                "--latency",
                "-H",
                f"Authorization: Bearer {TOKEN}",
                "-s",
                lua.name,
                url,
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    if "Non-2xx" in out or "Socket errors" in out:
        raise RuntimeError(f"errors during the run:\n{out}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]

    def pct(label: str) -> float:
        value, unit = re.search(rf"{label}%\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
        return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]

    return rps, pct("50"), pct("99")


@contextmanager
def bare_app() -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(BENCH / "bare_app.py"), str(port)],
        env={**os.environ, "PYTHONPATH": str(BENCH.parent)},
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_ok(f"{base}/", START_TIMEOUT_S, gone=lambda: process.poll() is not None)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)


def bench(label: str, url: str, seconds: int, rounds: int, connections: int) -> None:
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
    with ExitStack() as stack:
        bare = stack.enter_context(bare_app())
        ours = stack.enter_context(serve_in_subprocess(env, start_timeout=START_TIMEOUT_S))
        # The same question with the answer cache off: every request reads the database and
        # recomputes the answer from the cached fit (1,000 bootstrap samples).
        uncached = stack.enter_context(
            serve_in_subprocess(
                {**env, "SCALING_ANSWER_CACHE_SECONDS": "0"}, start_timeout=START_TIMEOUT_S
            )
        )
        client = stack.enter_context(
            httpx.Client(base_url=ours, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=120)
        )
        client.post("/v1/experiments", json={"name": name}).raise_for_status()
        client.post(
            f"/v1/experiments/{name}/runs:import",
            content=(DATA / "kyo_chinchilla_llm_df.csv").read_text(),
            headers={"content-type": "text/csv"},
        ).raise_for_status()
        client.post(f"/v1/experiments/{name}/fits", json={"bootstrap": 1000}).raise_for_status()
        targets: dict[str, tuple[str, str | None]] = {
            "bare": (f"{bare}/", None),
            "healthz": (f"{ours}/healthz", None),
            "cached": (ours + path, None),
            "uncached": (uncached + path, None),
            "distinct": (uncached + path, DISTINCT_BUDGETS),
        }
        for target, _ in targets.values():  # warm each (caches, key cache, fit cache)
            httpx.get(target, headers={"Authorization": f"Bearer {TOKEN}"}).raise_for_status()
        samples: dict[str, list[tuple[float, float, float]]] = {what: [] for what in targets}
        for _ in range(rounds):
            for what, (target, script) in targets.items():
                samples[what].append(wrk(target, seconds, connections, script))
    medians = {
        what: tuple(statistics.median(s[i] for s in runs) for i in range(3))
        for what, runs in samples.items()
    }
    baseline = {
        "bare": "bare",
        "healthz": "bare",
        "cached": "bare",
        "uncached": "healthz",
        "distinct": "healthz",
    }
    for what, (rps, p50, p99) in medians.items():
        base = baseline[what]
        print(
            f"{label:10s} {what:9s} {rps:7.0f} req/s ({rps / medians[base][0]:4.2f} of {base:7s})"
            f"   p50 {p50:6.2f} ms   p99 {p99:6.2f} ms"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--sqlite-only", action="store_true")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt-get install wrk")
    options = (args.seconds, args.rounds, args.connections)
    with tempfile.TemporaryDirectory() as folder:
        bench("sqlite", f"sqlite:///{Path(folder) / 'api.db'}", *options)
    if args.sqlite_only:
        return
    with scratch_database(args.postgres, "scaling_bench") as url:
        bench("postgresql", url, *options)


if __name__ == "__main__":
    main()
