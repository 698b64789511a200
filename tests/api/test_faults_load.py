"""Faults under traffic: the database going away mid-load, SIGTERM mid-request, broken files."""

import shutil
import signal
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from service.settings import Settings
from service.testing import live_server, serve_process
from tests.conftest import make_experiment
from tests.tcp_proxy import TcpProxy


def _stored_keys(url: str, experiment: str) -> list[str]:
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        rows = connection.execute(
            sa.text(
                "SELECT r.run_key FROM runs r JOIN experiments e ON e.id = r.experiment_id "
                "WHERE e.name = :name"
            ),
            {"name": experiment},
        )
        keys = [key for (key,) in rows]
    engine.dispose()
    return keys


def test_outage_under_mixed_traffic_loses_nothing_acknowledged(postgres_template: str) -> None:
    engine = sa.create_engine(postgres_template)
    with engine.begin() as connection:
        connection.execute(sa.text("TRUNCATE idempotency_records, fits, runs, experiments CASCADE"))
    engine.dispose()
    upstream = sa.make_url(postgres_template)
    proxy = TcpProxy(upstream.host or "127.0.0.1", upstream.port or 5432)
    proxy.start()
    url = upstream.set(port=proxy.port).render_as_string(hide_password=False)
    settings = Settings(
        database_url=url, auth=False, retry_after_seconds=3, fit_runner=False, db_pool_size=4
    )
    acknowledged: set[str] = set()
    refused: list[list[str]] = []
    statuses: list[int] = []
    lock = threading.Lock()
    stop = threading.Event()

    def client_loop(base: str, worker: int) -> None:
        with httpx.Client(base_url=base, timeout=20) as http:
            n = 0
            while not stop.is_set():
                n += 1
                if n % 3 == 0:
                    response = http.get("/v1/experiments/load/runs", params={"limit": 50})
                    keys: list[str] = []
                else:
                    keys = [f"w{worker}-{n}-{i}" for i in range(5)]
                    runs = [{"run_key": k, "params": 1e8, "tokens": 1e9, "loss": 3} for k in keys]
                    response = http.post("/v1/experiments/load/runs", json={"runs": runs})
                with lock:
                    statuses.append(response.status_code)
                    if response.status_code == 503:
                        assert response.headers["retry-after"] == "3"
                        assert response.json()["error"]["code"] == "database_unavailable"
                        if keys:
                            refused.append(keys)
                    elif keys:
                        assert response.status_code == 201, response.text
                        acknowledged.update(keys)
                time.sleep(0.01)

    try:
        with live_server(settings) as base:
            assert httpx.post(f"{base}/v1/experiments", json={"name": "load"}).status_code == 201
            threads = [threading.Thread(target=client_loop, args=(base, w)) for w in range(4)]
            for thread in threads:
                thread.start()
            time.sleep(0.8)
            proxy.cut()
            time.sleep(1.0)
            proxy.restore()
            time.sleep(1.2)
            stop.set()
            for thread in threads:
                thread.join(30)
            # Retrying what was refused, with the same run_keys, stores each run exactly once.
            with httpx.Client(base_url=base, timeout=20) as http:
                for keys in refused:
                    runs = [{"run_key": k, "params": 1e8, "tokens": 1e9, "loss": 3} for k in keys]
                    retry = http.post("/v1/experiments/load/runs", json={"runs": runs})
                    assert retry.status_code in (200, 201), retry.text
                    acknowledged.update(keys)
    finally:
        proxy.cut()
    assert set(statuses) <= {200, 201, 503}, sorted(set(statuses))
    assert 503 in statuses and statuses[-1] != 503
    stored = _stored_keys(postgres_template, "load")
    assert len(stored) == len(set(stored))  # never twice
    assert set(stored) == acknowledged  # every acknowledged run, and nothing else


def test_sigterm_lets_an_in_flight_batch_finish(sqlite_template: Path, tmp_path: Path) -> None:
    path = tmp_path / "sigterm.db"
    shutil.copy(sqlite_template, path)
    env = {"SCALING_DATABASE_URL": f"sqlite:///{path}", "SCALING_AUTH": "false"}
    runs = [
        {"run_key": f"k{i}", "params": 1e8 + i, "tokens": 1e9, "loss": 3, "metadata": {"i": i}}
        for i in range(10_000)
    ]
    result: dict[str, Any] = {}
    with serve_process(env) as (base, process):
        assert httpx.post(f"{base}/v1/experiments", json={"name": "exp"}).status_code == 201

        def post() -> None:
            response = httpx.post(
                f"{base}/v1/experiments/exp/runs", json={"runs": runs}, timeout=60
            )
            result["status"], result["at"] = response.status_code, time.monotonic()

        poster = threading.Thread(target=post)
        poster.start()
        deadline = time.monotonic() + 20
        while (
            'scaling_http_requests_in_progress{method="POST"} 1.0'
            not in httpx.get(f"{base}/metrics").text
        ):  # wait until the server is handling the batch
            assert time.monotonic() < deadline and "status" not in result
            time.sleep(0.01)
        signalled = time.monotonic()
        process.send_signal(signal.SIGTERM)
        poster.join(60)
        # uvicorn shuts down gracefully, then re-raises the signal: killed by SIGTERM, after.
        assert process.wait(30) in (0, -signal.SIGTERM)
    assert result["status"] == 201
    assert result["at"] > signalled  # it was in flight when the signal came
    assert len(set(_stored_keys(f"sqlite:///{path}", "exp"))) == 10_000


@pytest.mark.parametrize(
    "content",
    [
        "params,tokens,loss\n1e8,1e9,3.0\n2e8,2e9",  # cut off mid-row
        "params,tokens,loss\n1e8,1e9,3.0\n2e8,2e9,3.0,9\n",  # a row too long
        "params,tokens,loss\n1e8,1e9,3.0\n\x00\x01garbage,,\n",  # binary junk
        'params,tokens,loss\n1e8,1e9,3.0\n"2e8,2e9,3.0\n',  # unterminated quote
    ],
)
def test_corrupt_or_partial_csv_stores_nothing_and_reports_rows(
    client: TestClient, content: str
) -> None:
    make_experiment(client, "exp")
    response = client.post(
        "/v1/experiments/exp/runs:import", content=content, headers={"content-type": "text/csv"}
    )
    assert response.status_code == 422, response.text
    details = response.json()["error"]["details"]
    assert details["errors"] and all("row" in error for error in details["errors"])
    assert client.get("/v1/experiments/exp").json()["run_count"] == 0
