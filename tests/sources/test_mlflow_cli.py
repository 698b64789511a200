"""`scaling-service remote sources ...` and the Python client against a live server and a real
MLflow server."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from service.cli.main import app
from service.client import ScalingClient
from service.settings import Settings
from service.testing import live_server
from tests.conftest import ADMIN_TOKEN
from tests.sources.test_mlflow_sync import log_run


@pytest.fixture
def server(tmp_path: Path, sqlite_template: Path, mlflow_url: str) -> Iterator[str]:
    path = tmp_path / "scaling.db"
    shutil.copy(sqlite_template, path)
    settings = Settings(
        database_url=f"sqlite:///{path}",
        auth=True,
        bootstrap_admin_key=ADMIN_TOKEN,
        fit_runner=False,
        refit_debounce_seconds=0,
        log_level="warning",
        mlflow_servers={"main": {"url": mlflow_url}},
    )
    with live_server(settings) as url:
        yield url


def invoke(*args: str, code: int = 0) -> str:
    result = CliRunner().invoke(app, ["remote", *args])
    assert result.exit_code == code, result.output
    return result.output


@pytest.mark.slow
def test_add_sync_list_delete_from_the_cli(
    server: str, mlflow_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCALING_URL", server)
    monkeypatch.setenv("SCALING_API_KEY", ADMIN_TOKEN)
    tracking = MlflowClient(tracking_uri=mlflow_url)
    experiment_id = tracking.create_experiment("cli-sweep")
    log_run(tracking, experiment_id, {"n_params": 1e8, "n_tokens": 500}, [2.6, 2.5])
    log_run(tracking, experiment_id, {"n_params": 2e8}, [2.4])
    invoke("experiments", "create", "cli-sweep")

    bad = invoke(
        "sources",
        "add",
        "cli-sweep",
        "--server",
        "main",
        "--mlflow-experiment",
        experiment_id,
        "--map",
        "loss=metric:val_loss",
        code=2,
    )
    assert "map params, tokens too" in bad
    added = invoke(
        "sources",
        "add",
        "cli-sweep",
        "--server",
        "main",
        "--mlflow-experiment",
        experiment_id,
        "--map",
        "params=param:n_params",
        "--map",
        "tokens=param:n_tokens*1e6",
        "--map",
        "loss=metric:val_loss:min",
        "--json",
    )
    source_id = json.loads(added)["id"]
    out = invoke("sources", "sync", str(source_id))
    assert "1 run created" in out
    assert "no param 'n_tokens'" in out
    assert "cli-sweep: 1 source" in invoke("sources", "list", "cli-sweep")
    runs = json.loads(invoke("runs", "list", "cli-sweep", "--json"))
    assert [run["tokens"] for run in runs] == [5e8]
    assert [run["loss"] for run in runs] == [pytest.approx(2.5)]

    with ScalingClient(server, ADMIN_TOKEN) as client:
        again = client.sync_source(source_id)
        assert again.created == 0
        assert client.get_source(source_id).last_result == again
        assert client.get_source(source_id).log_results is False
        patched = client.update_source(source_id, {"results_target_flops": 1e22})
        assert (patched.log_results, patched.results_target_flops) == (False, 1e22)
        cleared = client.update_source(source_id, {"results_target_flops": None})
        assert cleared.results_target_flops is None

    out = invoke(
        "sources", "set", str(source_id), "--log-results", "--results-experiment", experiment_id
    )
    assert f"source {source_id}: results to MLflow on" in out
    shown = json.loads(invoke("sources", "list", "cli-sweep", "--json"))[0]
    assert (shown["log_results"], shown["results_experiment_id"]) == (True, experiment_id)
    assert "0 fits" in invoke("sources", "list", "cli-sweep")
    assert "results to MLflow off" in invoke("sources", "set", str(source_id), "--no-log-results")
    assert "give at least one option" in invoke("sources", "set", str(source_id), code=2)
    invoke("sources", "delete", str(source_id))
    assert "0 sources" in invoke("sources", "list", "cli-sweep")
