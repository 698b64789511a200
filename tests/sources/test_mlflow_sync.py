"""MLflow sources against a real tracking server: map, sync, resync, add, change, schedule."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from mlflow.tracking import MlflowClient

from service.app import create_app
from service.settings import Settings
from tests.conftest import make_experiment

MAPPING = {
    "params": {"kind": "param", "key": "n_params"},
    "tokens": {"kind": "param", "key": "n_tokens", "scale": 1e6},
    "loss": {"kind": "metric", "key": "val_loss", "reduce": "min"},
}


def log_run(
    tracking: MlflowClient,
    experiment_id: str,
    params: dict[str, Any],
    losses: list[float],
    *,
    finish: bool = True,
    tags: dict[str, str] | None = None,
) -> str:
    run = tracking.create_run(experiment_id, tags=tags or {})
    run_id = run.info.run_id
    for key, value in params.items():
        tracking.log_param(run_id, key, value)
    for step, loss in enumerate(losses):
        tracking.log_metric(run_id, "val_loss", loss, step=step * 100)
    if finish:
        tracking.set_terminated(run_id)
    return run_id


def loss_of(n: float, d: float) -> float:
    return 1.8 + 400 / n**0.34 + 410 / d**0.28


@pytest.fixture
def tracking(mlflow_url: str) -> MlflowClient:
    return MlflowClient(tracking_uri=mlflow_url)


@pytest.fixture
def api(database_url: str, mlflow_url: str) -> Iterator[TestClient]:
    settings = Settings(
        database_url=database_url,
        auth=False,
        fit_runner=False,
        refit_debounce_seconds=0,
        mlflow_servers={"main": {"url": mlflow_url}, "down": {"url": "http://127.0.0.1:9"}},
    )
    with TestClient(create_app(settings)) as client:
        yield client


def test_sync_maps_finished_runs_reports_the_rest_and_is_idempotent(
    api: TestClient, tracking: MlflowClient, request: pytest.FixtureRequest
) -> None:
    experiment_id = tracking.create_experiment(f"sweep-{request.node.callspec.id}")
    finished = {}
    for n in (1e7, 3e7, 1e8):
        for d_millions in (200, 600, 2000):
            d = d_millions * 1e6
            # The loss falls, then rises a little at the end: reduce=min takes the minimum.
            curve = [loss_of(n, d) + 0.5, loss_of(n, d), loss_of(n, d) + 0.01]
            run_id = log_run(
                tracking, experiment_id, {"n_params": n, "n_tokens": d_millions}, curve
            )
            finished[run_id] = (n, d, loss_of(n, d))
    running = log_run(
        tracking, experiment_id, {"n_params": 3e8, "n_tokens": 300}, [3.0], finish=False
    )
    missing = log_run(tracking, experiment_id, {"n_params": 3e8}, [3.0])
    bad = log_run(tracking, experiment_id, {"n_params": "big", "n_tokens": 100}, [3.0])

    make_experiment(api, "from-mlflow")
    unknown = api.post(
        "/v1/experiments/from-mlflow/sources",
        json={"server": "elsewhere", "experiment_ids": [experiment_id], "mapping": MAPPING},
    )
    assert unknown.status_code == 422
    assert "configured: ['down', 'main']" in unknown.json()["error"]["message"]
    created = api.post(
        "/v1/experiments/from-mlflow/sources",
        json={"server": "main", "experiment_ids": [experiment_id], "mapping": MAPPING},
    )
    assert created.status_code == 201, created.text
    source = created.json()
    assert "http" not in created.text  # the server's address stays the operator's

    first = api.post(f"/v1/sources/{source['id']}:sync")
    assert first.status_code == 200, first.text
    result = first.json()
    assert result["created"] == 9
    reasons = {item["mlflow_run_id"]: item["reason"] for item in result["unmapped"]}
    assert reasons == {
        missing: "no param 'n_tokens'",
        bad: "param 'n_params' = 'big' is not a number",
    }
    runs = api.get("/v1/experiments/from-mlflow/runs", params={"limit": 100}).json()["items"]
    assert {run["run_key"] for run in runs} == {f"mlflow:{run_id}" for run_id in finished}
    for run in runs:
        n, d, loss = finished[run["metadata"]["mlflow_run_id"]]
        assert run["params"] == pytest.approx(n)
        assert run["tokens"] == pytest.approx(d)
        assert run["loss"] == pytest.approx(loss)
        assert run["metadata"]["mlflow_loss_step"] == 100
        assert run["source"] == "mlflow"
        # The minimum came before the last step: a checkpoint of a longer schedule, which fits
        # leave out unless asked (its tokens are the run's, not the checkpoint's).
        assert run["loss_provenance"] == "mid_schedule"
        assert run["metadata"]["mlflow_loss_last_step"] == 200

    again = api.post(f"/v1/sources/{source['id']}:sync").json()
    assert again["created"] == 0
    # Runs ending at the watermark are read again: skipped as stored, or reported again.
    assert again["unchanged"] + len(again["unmapped"]) >= 1
    assert len(again["unmapped"]) <= 1
    assert len(api.get("/v1/experiments/from-mlflow/runs").json()["items"]) == 9

    # New runs and a run that finished since: only they are added.
    tracking.set_terminated(running)
    added = log_run(tracking, experiment_id, {"n_params": 2e8, "n_tokens": 900}, [2.9, 2.8])
    third = api.post(f"/v1/sources/{source['id']}:sync").json()
    assert third["created"] == 2
    assert set(third["run_ids"]) <= {
        run["id"] for run in api.get("/v1/experiments/from-mlflow/runs").json()["items"]
    }
    assert added not in {item["mlflow_run_id"] for item in third["unmapped"]}
    (newest,) = [
        run
        for run in api.get("/v1/experiments/from-mlflow/runs", params={"limit": 100}).json()[
            "items"
        ]
        if run["metadata"]["mlflow_run_id"] == added
    ]
    # Its minimum is its last value: the end of its schedule.
    assert newest["loss_provenance"] == "end_of_schedule"
    assert "mlflow_loss_last_step" not in newest["metadata"]

    # A stored run whose MLflow values changed is reported, not rewritten.
    changed_id = next(iter(finished))
    tracking.log_metric(changed_id, "val_loss", 0.5, step=900)
    full = api.post(f"/v1/sources/{source['id']}:sync", params={"full": "true"}).json()
    assert full["created"] == 0
    assert (
        "changed in MLflow since it was stored"
        in {item["mlflow_run_id"]: item["reason"] for item in full["unmapped"]}[changed_id]
    )
    stored = api.get("/v1/experiments/from-mlflow/runs", params={"limit": 100}).json()["items"]
    assert len(stored) == 11
    assert all(run["loss"] > 1.0 for run in stored)

    shown = api.get(f"/v1/sources/{source['id']}").json()
    assert shown["last_result"]["created"] == 0
    assert shown["watermark_ms"] >= result["watermark_ms"]


def test_unreachable_server_is_a_502_that_names_it_and_stores_nothing(api: TestClient) -> None:
    make_experiment(api, "down")
    source = api.post(
        "/v1/experiments/down/sources",
        json={"server": "down", "experiment_ids": ["1"], "mapping": MAPPING},
    ).json()
    response = api.post(f"/v1/sources/{source['id']}:sync")
    assert response.status_code == 502
    message = response.json()["error"]["message"]
    assert "'down'" in message
    assert "127.0.0.1" not in message
    assert api.get("/v1/experiments/down/runs").json()["items"] == []


def test_the_worker_syncs_scheduled_sources_when_due(
    api: TestClient, tracking: MlflowClient, request: pytest.FixtureRequest
) -> None:
    from service.fits.service import FitPolicy
    from service.scaling import preset
    from service.worker.executors.simulated import SimulatedExecutor
    from service.worker.loop import Worker

    experiment_id = tracking.create_experiment(f"scheduled-{request.node.callspec.id}")
    log_run(tracking, experiment_id, {"n_params": 1e8, "n_tokens": 500}, [2.5])
    make_experiment(api, "scheduled")
    source = api.post(
        "/v1/experiments/scheduled/sources",
        json={
            "server": "main",
            "experiment_ids": [experiment_id],
            "mapping": MAPPING,
            "schedule_seconds": 60,
        },
    ).json()
    app: Any = api.app
    settings = app.state.settings
    worker = Worker(
        app.state.session_factory,
        SimulatedExecutor(preset("epoch-2024").law, "epoch-2024"),
        FitPolicy.from_settings(settings),
        lease=timedelta(seconds=60),
        settings=settings,
    )
    worker.sources_tick()
    assert len(api.get("/v1/experiments/scheduled/runs").json()["items"]) == 1
    shown = api.get(f"/v1/sources/{source['id']}").json()
    assert shown["last_result"]["created"] == 1
    # Not due again for a minute: a second tick reads nothing.
    log_run(tracking, experiment_id, {"n_params": 2e8, "n_tokens": 500}, [2.4])
    worker.sources_tick()
    assert len(api.get("/v1/experiments/scheduled/runs").json()["items"]) == 1
