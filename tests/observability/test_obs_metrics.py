"""GET /metrics: latency by route template (bounded labels), and the helpers other code calls."""

import os
import subprocess
from pathlib import Path

from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from service import metrics
from service.app import create_app
from service.settings import Settings
from tests.conftest import make_experiment

RUNS_ROUTE = "/v1/experiments/{name}/runs"


def samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    return [
        (sample.labels, sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    ]


def runs_count(client: TestClient) -> tuple[int, float]:
    found = [
        value
        for labels, value in samples(
            client.get("/metrics").text, "scaling_http_request_duration_seconds_count"
        )
        # 2xx only: other tests in this process leave 4xx series for the route (metrics are
        # process-wide).
        if labels["route"] == RUNS_ROUTE
        and labels["method"] == "GET"
        and labels["status_class"] == "2xx"
    ]
    return len(found), sum(found)


def test_latency_is_labelled_by_route_template_not_raw_path(client: TestClient) -> None:
    make_experiment(client, "alpha")
    make_experiment(client, "beta")
    _, before = runs_count(client)
    assert client.get("/v1/experiments/alpha/runs").status_code == 200
    assert client.get("/v1/experiments/beta/runs").status_code == 200
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    series, after = runs_count(client)
    assert series == 1  # one series for both experiments
    assert after - before == 2
    assert "alpha" not in response.text
    assert "beta" not in response.text
    assert 'status_class="2xx"' in response.text
    assert "scaling_http_requests_in_progress" in response.text
    assert "scaling_http_request_duration_seconds_bucket" in response.text


def test_metrics_need_no_key(app_client: TestClient) -> None:
    assert app_client.get("/v1/experiments").status_code == 401
    assert app_client.get("/metrics").status_code == 200


def test_unknown_paths_share_one_label(app_client: TestClient) -> None:
    app_client.get("/no/such/path/1")
    app_client.get("/no/such/path/2")
    text = app_client.get("/metrics").text
    assert "/no/such" not in text
    assert f'route="{metrics.UNMATCHED_ROUTE}"' in text


def test_metrics_can_be_switched_off(database_url: str) -> None:
    settings = Settings(database_url=database_url, metrics_enabled=False, auth=False)
    with TestClient(create_app(settings)) as client:
        assert client.get("/metrics").status_code == 404


def test_helpers_publish_their_metrics() -> None:
    metrics.observe_fit_duration("chinchilla", "parametric", 1.5)
    metrics.set_job_states({"queued": 3, "running": 1})
    metrics.set_job_states({"running": 2})
    metrics.set_queue_depth(7)
    metrics.worker_heartbeat("worker-a")
    value = REGISTRY.get_sample_value
    assert value(
        "scaling_fit_duration_seconds_count", {"law": "chinchilla", "method": "parametric"}
    )
    assert value("scaling_jobs", {"state": "queued"}) == 0
    assert value("scaling_jobs", {"state": "running"}) == 2
    assert value("scaling_job_queue_depth") == 7
    assert (
        value("scaling_worker_last_heartbeat_timestamp_seconds", {"worker_id": "worker-a"}) or 0
    ) > 0
    text = metrics.render().decode()
    assert "scaling_fit_duration_seconds_bucket" in text


def test_reaper_marks_only_dead_processes(tmp_path: Path) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    live_file = tmp_path / f"gauge_livesum_{dead.pid}.db"
    live_file.write_bytes(b"")
    mine = tmp_path / f"gauge_livesum_{os.getpid()}.db"
    mine.write_bytes(b"")
    kept = tmp_path / f"counter_{dead.pid}.db"
    kept.write_bytes(b"")
    assert metrics.reap_dead_processes(tmp_path) == [dead.pid]
    assert not live_file.exists()
    assert mine.exists()
    assert kept.exists()  # counters of dead workers still count


def test_job_gauges_are_counted_from_the_database_at_scrape_time(client: TestClient) -> None:
    """No worker runs in this process: the API itself counts the queue when scraped."""
    make_experiment(client)
    runs = [{"params": 1e7, "tokens": 1e9 * 1.1**k} for k in range(9)]
    queued = client.post("/v1/experiments/exp/jobs", json={"runs": runs})
    assert queued.status_code == 201, queued.text
    client.post(f"/v1/jobs/{queued.json()[0]['id']}:cancel")
    text = client.get("/metrics").text
    assert samples(text, "scaling_job_queue_depth") == [({}, 8.0)]
    by_state = {labels["state"]: value for labels, value in samples(text, "scaling_jobs")}
    assert by_state["queued"] == 8 and by_state["cancelled"] == 1
