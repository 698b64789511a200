"""The autopilot end to end on CPU with the real trainer at tiny scale and the recipe's own
defaults (no hand-set lr or batch, the autopilot's default of up to 3 points per run): seed plan
-> jobs -> runs -> fit -> an active round of runs with cooldown branches -> fit -> an answer at
the target with an interval, after which the autopilot is paused; every job trains the shape
planned and stores one run per point, the budget counts FLOPs as trained (each trunk once), and
no fit is retried on unchanged data."""

import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from service.store.models import Fit
from service.worker.executors.local import LocalExecutor
from service.worker.loop import Worker
from tests.conftest import make_experiment

# docs/autopilot.md's scenario, a decade smaller per run and with context 32, so that the
# seed (15 runs of 5e9-5e11 FLOPs) and a short active round take a few minutes. The per-run
# overhead is the default for a CPU trainer (7.2e10 FLOPs, measured: service/scaling/overhead.py),
# paid from the budget like the runs: the seed's 2.78e12 FLOPs and 15 overheads fit in half of
# 7.8e12 (the seed's share), and the active rounds have the rest.
SETTINGS: dict[str, Any] = {
    "enabled": True,
    "experiment_budget_flops": 7.8e12,
    "target_flops": 1e14,
    "max_flops_per_run": 5e11,
    "min_flops_per_run": 5e9,
    # Two slots: an active round of two runs (each a trunk with its cooldown branches, the
    # default max_branches_per_run of 3) closes the loop without a queue to cancel.
    "batch_size": 2,
    "trainer": {"device": "cpu", "threads": 1, "shape": {"context_tokens": 32}},
}


# Minutes of training: once, on SQLite (the loop's database code runs on both elsewhere).
@pytest.mark.slow(seconds=300)
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_autopilot_closes_its_loop_on_real_training(
    client: TestClient,
    database_url: str,
    tmp_path: Path,
    corpus_cache: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SCALING_CACHE_DIR", str(corpus_cache))  # the trainer's corpus cache
    make_experiment(client, "bytes", description="byte-level GPTs on the Python stdlib")
    put = client.put("/v1/experiments/bytes/autofill", json=SETTINGS)
    assert put.status_code == 200, put.text

    state: Any = client.app.state  # type: ignore[attr-defined]
    executor = LocalExecutor(tmp_path / "jobs", cpu_slots=2, time_limit_s=300)
    worker = Worker(state.session_factory, executor, state.fit_policy, poll_seconds=0.2)
    deadline = time.monotonic() + 900
    status: dict[str, Any] = {}
    closed = False
    try:
        while time.monotonic() < deadline:
            worker.tick()
            status = client.get("/v1/experiments/bytes/autofill").json()
            if status["state"] in ("done", "exhausted", "blocked"):
                break
            if not closed and _loop_closed(client):
                # Seed, fit, an active round, a fit of its runs: the loop is closed. The rest of
                # the budget would repeat the round for minutes of CPU (spending a budget to its
                # end is tests/worker/test_worker_loop.py's, on the simulated executor), so the
                # autopilot is paused, what it queued is cancelled and what runs is finished.
                closed = True
                paused = {**SETTINGS, "enabled": False}
                assert client.put("/v1/experiments/bytes/autofill", json=paused).is_success
                for job in _jobs(client):
                    if job["status"] == "queued":
                        assert client.post(f"/v1/jobs/{job['id']}:cancel").is_success
            if closed and not any(j["status"] in ("queued", "running") for j in _jobs(client)):
                break
            time.sleep(0.2)
    finally:
        worker.shutdown()
    assert closed or status["state"] in ("done", "exhausted"), status
    status = client.get("/v1/experiments/bytes/autofill").json()

    jobs = [job for job in _jobs(client) if job["status"] != "cancelled"]
    assert {job["status"] for job in jobs} == {"succeeded"}, [job["error"] for job in jobs]
    phases = [job["config"]["plan"]["phase"] for job in jobs]
    assert phases.count("seed") == 15 and "active" in phases
    runs = client.get("/v1/experiments/bytes/runs", params={"limit": 1000}).json()["items"]
    by_id = {run["id"]: run for run in runs}
    by_trunk: dict[str, list[dict[str, Any]]] = {}
    for run in runs:
        by_trunk.setdefault(run["trunk_key"] or run["run_key"], []).append(run)
    branched = 0
    for job in jobs:
        run = by_id[job["result_run_id"]]
        built = job["config"]["built"]
        assert run["params"] == job["params"] == built["params"]  # the shape planned, trained
        assert run["tokens"] == job["tokens"]
        assert run["hyperparameters"]["d_model"] == built["shape"]["d_model"]
        assert "lr" not in job["config"]["trainer"]  # the recipe's own lr and batch
        points = built.get("branch_tokens") or [built["tokens"]]  # one run per point of the job
        own = by_trunk[run["trunk_key"] or run["run_key"]]
        assert sorted(r["tokens"] for r in own) == sorted(points)
        assert {r["params"] for r in own} == {run["params"]}
        if len(points) > 1:
            branched += 1
            assert {r["loss_provenance"] for r in own} == {"after_cooldown"}
            assert job["flops"] < sum(r["flops"] for r in own)  # the trunk paid once
        else:
            assert run["loss_provenance"] == "end_of_schedule"
    assert sum(len(own) for own in by_trunk.values()) == len(runs)  # no run without its job
    assert branched, "the active round planned no run with cooldown branches"
    pairs = [(run["params"], run["tokens"]) for run in runs]
    assert len(set(pairs)) == len(pairs)
    trained = sum(job["flops"] for job in jobs)  # a trunk with branches: the trunk once
    assert status["spent_flops"] == pytest.approx(trained, rel=0.05)
    assert status["spent_flops"] <= SETTINGS["experiment_budget_flops"] * 1.05

    answer = client.get("/v1/experiments/bytes/recommendation", params={"flops": 1e14})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    low, high = body["intervals"]["params"]["low"], body["intervals"]["params"]["high"]
    assert low < body["params"] < high

    engine = sa.create_engine(database_url)
    with engine.connect() as connection:
        fits = connection.execute(
            sa.select(Fit.status, Fit.data_version).where(Fit.status.in_(("succeeded", "failed")))
        ).all()
    engine.dispose()
    assert any(status == "succeeded" for status, _ in fits)
    versions = [version for _, version in fits]
    assert len(versions) == len(set(versions)), fits  # never the same data twice


def _jobs(client: TestClient) -> list[dict[str, Any]]:
    page = client.get("/v1/jobs", params={"experiment": "bytes", "limit": 1000})
    items: list[dict[str, Any]] = page.json()["items"]
    return items


def _loop_closed(client: TestClient) -> bool:
    """An active job succeeded and the fit in force, not stale, has its run."""
    active = [
        job["result_run_id"]
        for job in _jobs(client)
        if job["config"]["plan"]["phase"] == "active" and job["status"] == "succeeded"
    ]
    current = client.get("/v1/experiments/bytes/fits/current")
    if not active or current.status_code != 200:
        return False
    fit = current.json()
    return not fit["stale"] and bool(set(active) & set(fit["run_ids"] or []))
