"""`scaling-service serve --workers 2`: /metrics counts every request, whoever served it."""

import json
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from service.testing import serve_in_subprocess

ROUTE = "/v1/experiments/{name}/runs"
REQUESTS = 20


def request_count(text: str, route: str, method: str) -> float:
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "scaling_http_request_duration_seconds_count"
        and sample.labels["route"] == route
        and sample.labels["method"] == method
    )


@pytest.mark.slow
def test_two_workers_share_one_view_of_the_metrics(
    sqlite_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    database = tmp_path / "scaling.db"
    shutil.copy(sqlite_template, database)
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {
        "SCALING_DATABASE_URL": f"sqlite:///{database}",
        "SCALING_AUTH": "false",
        "TMPDIR": str(temp),
    }
    log_file = tmp_path / "server.log"
    env["SCALING_LOG_LEVEL"] = "info"
    # Two uvicorn workers importing the app take over 30 s to answer when the real-training
    # tests load both CPUs (CI failed here at 30 s).
    with serve_in_subprocess(env, workers=2, stderr_path=log_file, start_timeout=180) as base:
        created = httpx.post(f"{base}/v1/experiments", json={"name": "mp"}, timeout=10)
        assert created.status_code == 201, created.text

        def get(i: int) -> int:
            # a new connection per request, so either worker may accept it
            url = f"{base}/v1/experiments/{'mp' if i % 2 else 'absent'}/runs"
            return httpx.get(url, timeout=10).status_code

        with ThreadPoolExecutor(max_workers=4) as pool:
            statuses = list(pool.map(get, range(REQUESTS)))
        assert sorted(set(statuses)) == [200, 404]
        scrapes = [httpx.get(f"{base}/metrics", timeout=10).text for _ in range(4)]
        multiproc_dirs = [p for p in temp.iterdir() if p.name.startswith("scaling-metrics-")]
        assert len(multiproc_dirs) == 1
        pids = {p.stem.rsplit("_", 1)[1] for p in multiproc_dirs[0].glob("histogram_*.db")}
    for text in scrapes:
        assert request_count(text, ROUTE, "GET") == REQUESTS
        assert request_count(text, "/v1/experiments", "POST") == 1
        assert "/v1/experiments/mp/runs" not in text
    assert pids, "the workers wrote no samples"
    assert not any(temp.glob("scaling-metrics-*")), "serve left its multiprocess dir behind"
    lines = [json.loads(line) for line in log_file.read_text().splitlines() if line.strip()]
    assert not [line for line in lines if line.get("logger") == "uvicorn.access"]
    access = [line for line in lines if line.get("logger") == "service.access"]
    assert len([line for line in access if line["route"] == ROUTE]) == REQUESTS
    assert {line["level"] for line in lines if line.get("logger") == "uvicorn.error"} >= {"info"}
