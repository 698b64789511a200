"""Where an uncached recommendation's time goes, in process (no HTTP, no wrk).

Builds the app on a scratch SQLite database (then a scratch PostgreSQL one), imports the
Chinchilla runs, fits them with 1,000 bootstrap resamples, then times, on the calling thread:

- healthz:  GET /healthz through the whole ASGI app (middleware included), the baseline;
- answer:   `current_answer_json`, what the recommendation route computes when the answer
            cache misses: a connection of its own in autocommit, one read (the experiment
            and its fit in force, as plain rows), the answer from the cached fit's samples,
            the JSON;
- and the answer's parts: the read alone, the answer alone, its JSON.

Usage:

    python bench/answer.py [--calls 2000] [--postgres URL] [--sqlite-only]

Prints, per backend, microseconds per call (median of 5 repeats) and answer / healthz.
bench/api.py measures the same request over HTTP with wrk.
"""

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Callable, MutableMapping
from pathlib import Path
from typing import Any

import httpx
from alembic import command
from fastapi import FastAPI

from service.app import create_app
from service.db import alembic_config, read_connection, session_scope
from service.fits.recommend import answer, current_answer_json, resolve_current
from service.schemas.recommendations import BudgetSpec, ConstraintsSpec
from service.settings import Settings
from service.store import experiments as experiment_store
from service.store import fits as fit_store
from service.testing import scratch_database

DATA = Path(__file__).resolve().parent.parent / "examples" / "data" / "kyo_chinchilla_llm_df.csv"
NAME = "chinchilla"
LAW, METHOD = "chinchilla", "parametric"


def per_call_us(function: Callable[[], Any], calls: int, repeats: int = 5) -> float:
    function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            function()
        times.append((time.perf_counter() - start) / calls)
    return statistics.median(times) * 1e6


async def healthz_us(app: FastAPI, calls: int, repeats: int = 5) -> float:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/healthz",
        "raw_path": b"/healthz",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"bench")],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
        "app": app,
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            assert message["status"] == 200, message

    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            await app(scope, receive, send)
        times.append((time.perf_counter() - start) / calls)
    return statistics.median(times) * 1e6


async def bench_backend(label: str, url: str, calls: int) -> None:
    command.upgrade(alembic_config(url), "head")
    settings = Settings(
        database_url=url,
        auth=False,
        log_level="warning",
        answer_cache_seconds=0,
        fit_inline_max_bootstrap=4000,
        fit_runner=False,
    )
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://bench"
        ) as client,
    ):
        (await client.post("/v1/experiments", json={"name": NAME})).raise_for_status()
        (
            await client.post(
                f"/v1/experiments/{NAME}/runs:import",
                content=DATA.read_text(),
                headers={"content-type": "text/csv"},
            )
        ).raise_for_status()
        fit = await client.post(f"/v1/experiments/{NAME}/fits", json={"bootstrap": 1000})
        fit.raise_for_status()
        state = app.state
        budget, constraints = BudgetSpec(flops=1e24), ConstraintsSpec()
        healthz = await healthz_us(app, calls)
        whole = per_call_us(
            lambda: current_answer_json(
                state.session_factory, NAME, LAW, METHOD, budget, constraints, 0.9, state.fit_cache
            ),
            calls,
        )

        def read() -> Any:
            with read_connection(state.session_factory) as connection:
                return fit_store.experiment_and_current(connection, NAME, LAW, METHOD)

        with session_scope(state.session_factory) as session:
            experiment = experiment_store.get_by_name(session, NAME)
            resolved = resolve_current(session, experiment, LAW, METHOD, state.fit_cache)
            parts = {
                "read (own connection)": per_call_us(read, calls),
                "answer": per_call_us(lambda: answer(resolved, budget, constraints, 0.9), calls),
            }
            recommendation = answer(resolved, budget, constraints, 0.9)
            parts["JSON"] = per_call_us(lambda: recommendation.model_dump_json().encode(), calls)
    print(f"{label:10s} healthz (ASGI, middleware included) {healthz:7.0f} us")
    print(
        f"{label:10s} uncached answer (current_answer_json) {whole:7.0f} us   "
        f"answer/healthz = {whole / healthz:.1f}"
    )
    for part, value in parts.items():
        print(f"{label:10s}   {part:24s} {value:7.0f} us")


async def main(calls: int, postgres: str, sqlite_only: bool) -> None:
    with tempfile.TemporaryDirectory() as folder:
        await bench_backend("sqlite", f"sqlite:///{Path(folder) / 'bench.db'}", calls)
    if not sqlite_only:
        with scratch_database(postgres, "scaling_bench") as url:
            await bench_backend("postgresql", url, calls)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--sqlite-only", action="store_true")
    args = parser.parse_args()
    asyncio.run(main(args.calls, args.postgres, args.sqlite_only))
