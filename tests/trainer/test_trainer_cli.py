from __future__ import annotations

import importlib.util
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer
from typer.testing import CliRunner

from service.cli import train as train_cli
from service.schemas.runs import RunIn
from service.trainer.config import TrainConfig
from service.trainer.errors import ReportError
from service.trainer.job import Job
from service.trainer.loop import train
from service.trainer.report import report_run, run_payload
from service.trainer.result import TrainResult

runner = CliRunner()
# A group of its own: with only one command typer would collapse the app into that command.
app = typer.Typer()
train_cli.register(app)


@app.callback()
def _group() -> None:
    """Test group."""


def _job_file(tmp_path: Path, config: TrainConfig, **extra: Any) -> Path:
    path = tmp_path / "job.json"
    body = {"job_id": "job-7", "experiment": "exp-a", "config": config.to_dict(), **extra}
    path.write_text(json.dumps(body))
    return path


@pytest.fixture(scope="module")
def short_config(tiny_config: TrainConfig) -> TrainConfig:
    return replace(tiny_config, tokens=20 * 8 * 64)


@pytest.fixture(scope="module")
def job_and_result(short_config: TrainConfig) -> tuple[Job, TrainResult]:
    job = Job("job-7", "exp-a", short_config, {"sweep": "s1"})
    return job, train(short_config)


@pytest.mark.parametrize(
    "content",
    ["{not json", json.dumps({"experiment": "e", "config": {}}), json.dumps([1, 2])],
)
def test_bad_job_file_exits_3(tmp_path: Path, content: str) -> None:
    job = tmp_path / "job.json"
    job.write_text(content)
    result = runner.invoke(app, ["train", str(job), "--out", str(tmp_path / "r.json")])
    assert result.exit_code == 3
    assert not (tmp_path / "r.json").exists()


def test_unknown_config_field_exits_3(tmp_path: Path, short_config: TrainConfig) -> None:
    job = tmp_path / "job.json"
    job.write_text(json.dumps({"job_id": 1, "experiment": "e", "config": {"shape": {}, "x": 1}}))
    result = runner.invoke(app, ["train", str(job), "--out", str(tmp_path / "r.json")])
    assert result.exit_code == 3


def test_successful_run_writes_result(tmp_path: Path, short_config: TrainConfig) -> None:
    out = tmp_path / "out" / "result.json"
    result = runner.invoke(
        app, ["train", str(_job_file(tmp_path, short_config)), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    body = json.loads(out.read_text())
    assert body["job_id"] == "job-7"
    assert body["status"] == "ok"
    assert body["reported"] is False
    assert body["result"]["tokens"] == 20 * 8 * 64
    assert "step 20/20" in result.stderr


def test_training_failure_exits_4_and_is_never_reported(
    tmp_path: Path, short_config: TrainConfig
) -> None:
    bad = replace(short_config, tokens=200 * 8 * 64, lr=50.0, grad_clip=1e9)
    args = ["train", str(_job_file(tmp_path, bad)), "--out", str(tmp_path / "r.json")]
    result = runner.invoke(app, [*args, "--report-url", "http://127.0.0.1:9", "--api-key", "k"])
    assert result.exit_code == 4
    assert json.loads((tmp_path / "r.json").read_text())["reported"] is False


def test_time_limit_exits_5(tmp_path: Path, short_config: TrainConfig) -> None:
    long = replace(short_config, tokens=10**8)
    args = ["train", str(_job_file(tmp_path, long)), "--out", str(tmp_path / "r.json")]
    result = runner.invoke(app, [*args, "--time-limit", "1"])
    assert result.exit_code == 5
    assert json.loads((tmp_path / "r.json").read_text())["status"] == "timeout"


def test_unreachable_service_exits_6(tmp_path: Path, short_config: TrainConfig) -> None:
    args = ["train", str(_job_file(tmp_path, short_config)), "--out", str(tmp_path / "r.json")]
    result = runner.invoke(
        app, [*args, "--report-url", "http://127.0.0.1:9"], env={"SCALING_API_KEY": "k"}
    )
    assert result.exit_code == 6
    assert json.loads((tmp_path / "r.json").read_text())["status"] == "ok"


def test_report_url_without_key_exits_3(tmp_path: Path, short_config: TrainConfig) -> None:
    args = ["train", str(_job_file(tmp_path, short_config)), "--out", str(tmp_path / "r.json")]
    result = runner.invoke(app, [*args, "--report-url", "http://x"], env={"SCALING_API_KEY": ""})
    assert result.exit_code == 3


def test_missing_torch_exits_7_with_a_clear_message(
    tmp_path: Path, short_config: TrainConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    args = ["train", str(_job_file(tmp_path, short_config)), "--out", str(tmp_path / "r.json")]
    result = runner.invoke(app, args)
    assert result.exit_code == 7
    assert "torch is not installed" in result.stderr


def test_help_documents_exit_codes() -> None:
    result = runner.invoke(app, ["train", "--help"])
    assert result.exit_code == 0
    assert "6 reporting" in " ".join(result.output.split())


def test_report_retries_503_then_accepts(job_and_result: tuple[Job, TrainResult]) -> None:
    job, result = job_and_result
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(503 if len(seen) < 3 else 201, json={})

    response = report_run(
        "http://svc/", "key", job, result, max_wait_s=0.01, transport=httpx.MockTransport(handler)
    )
    assert response.status_code == 201
    assert len(seen) == 3
    request = seen[-1]
    assert request.url.path == "/v1/experiments/exp-a/runs"
    assert request.headers["authorization"] == "Bearer key"
    run = json.loads(request.content)["runs"][0]
    assert run["run_key"] == "job-7"
    assert run["params"] == result.total_params
    assert run["flops"] == 6 * result.total_params * result.tokens
    assert run["loss"] == result.val_loss
    assert run["unique_tokens"] == result.unique_train_tokens
    assert run["source"] == "trainer"
    assert run["hyperparameters"]["sweep"] == "s1"
    assert run["metadata"]["corpus_hash"] == result.corpus_hash
    assert run["metadata"]["tokenizer_hash"] == result.tokenizer_hash
    assert run["metadata"]["non_embedding_params"] == result.non_embedding_params


def test_report_accepts_an_existing_identical_run(job_and_result: tuple[Job, TrainResult]) -> None:
    job, result = job_and_result
    transport = httpx.MockTransport(lambda r: httpx.Response(200, json={}))
    assert report_run("http://svc", "k", job, result, transport=transport).status_code == 200


def test_report_rejection_raises(job_and_result: tuple[Job, TrainResult]) -> None:
    job, result = job_and_result
    transport = httpx.MockTransport(lambda r: httpx.Response(409, text="different body"))
    with pytest.raises(ReportError, match="409"):
        report_run("http://svc", "k", job, result, transport=transport)


def test_failed_runs_have_no_payload(job_and_result: tuple[Job, TrainResult]) -> None:
    job, result = job_and_result
    with pytest.raises(ReportError):
        run_payload(job, replace(result, status="nan", val_loss=None))


def test_main_app_registers_train() -> None:
    from service.cli import main

    assert "train" in [c.name for c in main.app.registered_commands]


def test_wsd_options_train_branches_and_print_a_line_each(
    tmp_path: Path, short_config: TrainConfig
) -> None:
    out = tmp_path / "result.json"
    job = _job_file(tmp_path, short_config, hyperparameters={"sweep": "w"})
    args = ["train", str(job), "--out", str(out), "--schedule", "wsd"]
    result = runner.invoke(app, [*args, "--branch-tokens", "5.12e3,10240"])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith("branch:")]
    assert len(lines) == 2
    assert "at 5120 tokens" in lines[0] and "after_cooldown" in lines[0]
    assert "at 10240 tokens" in lines[1]
    trained = TrainResult.from_dict(json.loads(out.read_text())["result"])
    assert trained.config["branch_tokens"] == [5120, 10240]
    assert [p.tokens for p in trained.points] == [5120, 10240]

    # Reported as one run per branch: the job's own (its longest) first, under the job's key.
    runs = run_payload(Job.load(job), trained)["runs"]
    assert [(r["run_key"], r["tokens"]) for r in runs] == [("job-7", 10240), ("job-7@5120", 5120)]
    for run, point in zip(runs, [trained.points[1], trained.points[0]], strict=True):
        assert run["loss"] == point.val_loss
        assert run["flops"] == 6 * trained.total_params * point.tokens
        assert run["hyperparameters"]["steps"] == point.steps
        assert run["loss_provenance"] == "after_cooldown"
        assert run["cooldown_fraction"] == 0.2
        assert run["metadata"]["cooldown_start_tokens"] == point.cooldown_start_tokens
        assert run["trunk_key"] == "job-7"
        assert RunIn.model_validate(run).trunk_key == "job-7"  # what the service accepts


@pytest.mark.parametrize(
    "options",
    [
        ["--branch-tokens", "5120"],  # cosine has no branches
        ["--schedule", "wsd", "--branch-tokens", "5120,ten"],
        ["--schedule", "wsd", "--branch-tokens", "1000.5"],
        ["--schedule", "wsd", "--branch-tokens", "1024"],  # cooldown inside the warmup
        ["--schedule", "wsd", "--cooldown-fraction", "1.5"],
    ],
)
def test_bad_schedule_options_exit_3(
    tmp_path: Path, short_config: TrainConfig, options: list[str]
) -> None:
    args = ["train", str(_job_file(tmp_path, short_config)), "--out", str(tmp_path / "r.json")]
    result = runner.invoke(app, [*args, *options])
    assert result.exit_code == 3, result.output
    assert not (tmp_path / "r.json").exists()


def test_cosine_results_report_one_run_as_before(
    job_and_result: tuple[Job, TrainResult],
) -> None:
    job, result = job_and_result
    (run,) = run_payload(job, result)["runs"]
    assert run["run_key"] == "job-7"
    assert not {"loss_provenance", "trunk_key", "cooldown_fraction"} & set(run["metadata"])
    assert not {"trunk_key", "cooldown_fraction"} & set(run)  # end_of_schedule by default
    assert result.points[0].loss_provenance == "end_of_schedule"
