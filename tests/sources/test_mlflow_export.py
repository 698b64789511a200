"""Results back to MLflow against a real tracking server: the worker logs each succeeded fit of a
source with log_results as one MLflow run, once, and survives a crash halfway."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from mlflow.entities import Run as MlflowRunEntity
from mlflow.tracking import MlflowClient

from service.app import create_app
from service.fits.service import FitPolicy
from service.scaling import preset
from service.settings import Settings
from service.sources import export
from service.sources import results as exported
from service.sources.mlflow_rest import (
    MlflowRestClient,
    MlflowServer,
    UnproxiedArtifactsError,
    proxied_artifact_path,
)
from service.store.models import SourceExport
from service.worker.executors.simulated import SimulatedExecutor
from service.worker.loop import Worker
from tests.conftest import grid_runs, make_experiment
from tests.sources.test_mlflow_sync import MAPPING


@pytest.fixture
def api(database_url: str, mlflow_url: str) -> Iterator[TestClient]:
    settings = Settings(
        database_url=database_url,
        auth=False,
        fit_runner=False,
        refit_debounce_seconds=3600,  # no refits in between: each fit is one the test asked for
        mlflow_servers={"main": {"url": mlflow_url}, "down": {"url": "http://127.0.0.1:9"}},
    )
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.fixture
def worker(api: TestClient) -> Worker:
    app: Any = api.app
    settings = app.state.settings
    return Worker(
        app.state.session_factory,
        SimulatedExecutor(preset("epoch-2024").law, "epoch-2024"),
        FitPolicy.from_settings(settings),
        lease=timedelta(seconds=60),
        settings=settings,
    )


@pytest.fixture
def no_plots(monkeypatch: pytest.MonkeyPatch) -> None:
    """For the tests that do not look at plots: drawing them (matplotlib) is most of an export's
    time. The first test checks them."""
    monkeypatch.setattr(exported, "PLOT_KINDS", ())


@pytest.fixture
def tracking(mlflow_url: str) -> MlflowClient:
    return MlflowClient(tracking_uri=mlflow_url)


def experiment_with_runs(api: TestClient, name: str) -> None:
    make_experiment(api, name)
    posted = api.post(f"/v1/experiments/{name}/runs", json={"runs": grid_runs()})
    assert posted.status_code in (200, 201), posted.text


def fit(api: TestClient, name: str, **body: Any) -> dict[str, Any]:
    response = api.post(f"/v1/experiments/{name}/fits", json=body)
    assert response.status_code == 201, response.text
    fitted: dict[str, Any] = response.json()
    assert fitted["status"] == "succeeded"
    return fitted


def add_source(api: TestClient, name: str, mlflow_experiment: str, **fields: Any) -> int:
    response = api.post(
        f"/v1/experiments/{name}/sources",
        json={
            "server": "main",
            "experiment_ids": [mlflow_experiment],
            "mapping": MAPPING,
            **fields,
        },
    )
    assert response.status_code == 201, response.text
    source_id: int = response.json()["id"]
    return source_id


def logged(tracking: MlflowClient, experiment_id: str) -> list[MlflowRunEntity]:
    return list(tracking.search_runs([experiment_id], order_by=["attributes.start_time ASC"]))


@pytest.mark.slow(seconds=30)  # the first export imports matplotlib
def test_each_succeeded_fit_is_logged_once_with_its_results_and_plots(
    api: TestClient, worker: Worker, tracking: MlflowClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    results = tracking.create_experiment(f"results-{uuid4().hex}")
    experiment_with_runs(api, "logged")
    source_id = add_source(api, "logged", results, log_results=True, results_target_flops=1e21)
    first = fit(api, "logged", bootstrap=20, seed=1)

    worker.exports_tick()
    runs = logged(tracking, results)
    assert len(runs) == 1
    run = runs[0]
    assert run.info.status == "FINISHED"
    assert run.info.run_name == f"logged fit {first['id']} (parametric chinchilla)"
    assert run.data.tags["scaling.fit_id"] == str(first["id"])
    assert run.data.tags["scaling.source_id"] == str(source_id)
    assert "Estimates: E = " in run.data.tags["mlflow.note.content"]
    params = run.data.params
    assert params["law"] == "chinchilla"
    assert params["method"] == "parametric"
    assert params["n_runs"] == "20"
    assert params["settings.bootstrap"] == "20"
    assert params["target_flops"] == "1e+21"
    metrics = run.data.metrics
    for name in ("E", "A", "B", "alpha", "beta"):
        value = first["parameters"][name]
        assert metrics[f"fit/{name}"] == pytest.approx(value)
        low, high = first["intervals_95"][name]
        assert metrics[f"fit/{name}_ci95_low"] == pytest.approx(low)
        assert metrics[f"fit/{name}_ci95_high"] == pytest.approx(high)
    assert metrics["goodness/rmse_log_loss"] == pytest.approx(first["goodness"]["rmse_log_loss"])
    assert metrics["n_runs"] == 20
    answer = api.post(
        "/v1/recommendations",
        json={
            "source": {"fit_id": first["id"]},
            "budget": {"flops": 1e21},
            "confidence": 0.95,
        },
    ).json()
    assert metrics["recommendation/params"] == pytest.approx(answer["params"])
    assert metrics["recommendation/loss"] == pytest.approx(answer["loss"])
    assert metrics["recommendation/params_ci95_low"] == pytest.approx(
        answer["intervals"]["params"]["low"]
    )
    files = {item.path for item in tracking.list_artifacts(run.info.run_id)}
    assert files == {"fit.json", "recommendation.json", "plots"}
    plots = {item.path for item in tracking.list_artifacts(run.info.run_id, "plots")}
    assert plots == {"plots/isoflop.svg", "plots/frontier.svg", "plots/residuals.svg"}
    svg = tracking.download_artifacts(run.info.run_id, "plots/residuals.svg", dst_path=None)
    with open(svg, encoding="utf-8") as handle:
        assert "<svg" in handle.read()

    shown = api.get(f"/v1/sources/{source_id}").json()
    assert shown["log_results"] is True
    assert shown["results_target_flops"] == 1e21
    assert shown["exported_fits"] == 1
    assert shown["last_export_error"] is None

    worker.exports_tick()  # nothing new: nothing logged
    assert len(logged(tracking, results)) == 1

    monkeypatch.setattr(exported, "PLOT_KINDS", ())  # seen above; drawing them takes seconds
    second = fit(api, "logged", law="chinchilla", seed=2)
    worker.exports_tick()
    runs = logged(tracking, results)
    assert [r.data.tags["scaling.fit_id"] for r in runs] == [str(first["id"]), str(second["id"])]
    # Without resamples: no intervals, and the run says so by their absence.
    assert "fit/E_ci95_low" not in runs[1].data.metrics


@pytest.mark.usefixtures("no_plots")
def test_a_source_without_log_results_logs_nothing_until_patched(
    api: TestClient, worker: Worker, tracking: MlflowClient
) -> None:
    results = tracking.create_experiment(f"quiet-{uuid4().hex}")
    experiment_with_runs(api, "quiet")
    source_id = add_source(api, "quiet", results)
    fitted = fit(api, "quiet")
    worker.exports_tick()
    assert logged(tracking, results) == []
    assert api.get(f"/v1/sources/{source_id}").json()["log_results"] is False

    patched = api.patch(f"/v1/sources/{source_id}", json={"log_results": True})
    assert patched.status_code == 200, patched.text
    assert patched.json()["log_results"] is True
    worker.exports_tick()
    runs = logged(tracking, results)
    assert [run.data.tags["scaling.fit_id"] for run in runs] == [str(fitted["id"])]
    # No target set and no autopilot: no recommendation.
    assert not any(key.startswith("recommendation/") for key in runs[0].data.metrics)

    bad = api.patch(f"/v1/sources/{source_id}", json={"log_results": None})
    assert bad.status_code == 422
    unknown = api.patch(f"/v1/sources/{source_id}", json={"server": "down"})
    assert unknown.status_code == 422
    assert api.get(f"/v1/sources/{source_id}").json()["server"] == "main"


@pytest.mark.usefixtures("no_plots")
def test_a_crash_halfway_neither_duplicates_nor_loses_a_run(
    api: TestClient, worker: Worker, tracking: MlflowClient
) -> None:
    results = tracking.create_experiment(f"crash-{uuid4().hex}")
    experiment_with_runs(api, "crash")
    source_id = add_source(api, "crash", results, log_results=True)
    fitted = fit(api, "crash")
    worker.exports_tick()
    (first,) = logged(tracking, results)
    app: Any = api.app

    def forget() -> None:
        """The worker died after MLflow had the run, before the database recorded it."""
        with app.state.session_factory() as session, session.begin():
            session.execute(sa.delete(SourceExport).where(SourceExport.source_id == source_id))

    forget()
    worker.exports_tick()
    assert [run.info.run_id for run in logged(tracking, results)] == [first.info.run_id]
    with app.state.session_factory() as session:
        recorded = session.scalars(sa.select(SourceExport.mlflow_run_id)).all()
    assert recorded == [first.info.run_id]

    # It died while logging: the run is still RUNNING. It is deleted and logged again.
    forget()
    tracking.update_run(first.info.run_id, status="RUNNING")
    worker.exports_tick()
    (again,) = logged(tracking, results)
    assert again.info.run_id != first.info.run_id
    assert again.info.status == "FINISHED"
    assert again.data.tags["scaling.fit_id"] == str(fitted["id"])
    assert tracking.get_run(first.info.run_id).info.lifecycle_stage == "deleted"


def test_a_failed_export_is_recorded_retried_later_and_never_blocks_fits(
    api: TestClient, worker: Worker
) -> None:
    experiment_with_runs(api, "unreachable")
    response = api.post(
        "/v1/experiments/unreachable/sources",
        json={"server": "down", "experiment_ids": ["1"], "mapping": MAPPING, "log_results": True},
    )
    source_id = response.json()["id"]
    fit(api, "unreachable")
    before = datetime.now(UTC)
    worker.tick()  # the whole tick: the export's failure must not raise
    shown = api.get(f"/v1/sources/{source_id}").json()
    assert shown["exported_fits"] == 0
    assert shown["last_export_error"].startswith("fit ")
    assert "'down'" in shown["last_export_error"]
    assert "127.0.0.1" not in shown["last_export_error"]
    app: Any = api.app
    with app.state.session_factory() as session:
        assert export.due(session, before) == []  # waiting out the failure
        assert export.due(session, before + export.RETRY_AFTER + timedelta(seconds=5)) == [
            source_id
        ]
    assert fit(api, "unreachable", seed=3)["status"] == "succeeded"


@pytest.mark.parametrize(
    ("uri", "path"),
    [
        ("mlflow-artifacts:/3/abc/artifacts", "3/abc/artifacts"),
        ("mlflow-artifacts://mlflow:5000/3/abc/artifacts", "3/abc/artifacts"),
        (
            "https://mlflow.internal/api/2.0/mlflow-artifacts/artifacts/3/abc/artifacts",
            "3/abc/artifacts",
        ),
    ],
)
def test_proxied_artifact_paths(uri: str, path: str) -> None:
    assert proxied_artifact_path(uri) == path


@pytest.mark.parametrize(
    "uri", ["s3://bucket/3/abc/artifacts", "/srv/mlruns/3/abc/artifacts", "mlflow-artifacts:/../x"]
)
def test_artifact_stores_the_proxy_does_not_serve_are_refused(uri: str) -> None:
    with pytest.raises(UnproxiedArtifactsError):
        proxied_artifact_path(uri)


def test_log_batch_splits_to_mlflow_limits_and_sends_everything() -> None:
    bodies: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/api/2.0/mlflow/runs/log-batch"
        bodies.append(json.loads(request.content))
        return httpx.Response(200, json={})

    server = MlflowServer(url="http://mlflow.test")
    params = {f"p{i}": str(i) for i in range(150)}
    metrics = {f"m{i}": float(i) for i in range(1200)}
    with MlflowRestClient("t", server, transport=httpx.MockTransport(handler)) as client:
        client.log_batch("run", params=params, metrics=metrics, tags={"t": "v"})
    for body in bodies:
        assert body["run_id"] == "run"
        assert len(body["params"]) <= 100
        assert len(body["metrics"]) <= 1000
        assert len(body["params"]) + len(body["metrics"]) + len(body["tags"]) <= 1000
    assert {p["key"]: p["value"] for b in bodies for p in b["params"]} == params
    assert {m["key"]: m["value"] for b in bodies for m in b["metrics"]} == metrics
    assert [t for b in bodies for t in b["tags"]] == [{"key": "t", "value": "v"}]
