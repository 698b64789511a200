"""Runs with several points through the worker: a WSD job stores one run per branch, all or
none, linked to the job and its trunk, and the budget counts what the job really trained."""

import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.db import session_scope
from service.scaling import preset
from service.store import jobs as job_store
from service.worker.executors.base import Outcome
from service.worker.executors.local import LocalExecutor
from service.worker.executors.simulated import SimulatedExecutor
from service.worker.loop import Worker
from tests.conftest import make_experiment
from tests.worker.conftest import request_trainer
from tests.worker.test_worker_loop import queue, runs_of, simulated_worker

WSD = {"schedule": "wsd", "branch_tokens": [5e8, 1e9, 2e9]}


def test_a_wsd_job_stores_a_run_per_branch_and_spends_its_trained_flops(
    client: TestClient,
) -> None:
    make_experiment(client)
    (job_id,) = queue(client, [{"params": 1e8, "tokens": 2e9, "trainer": WSD}])
    queued = client.get(f"/v1/jobs/{job_id}").json()
    built = queued["config"]["built"]
    points = built["branch_tokens"]
    assert len(points) == 3 and points[-1] == queued["tokens"] == built["tokens"]
    n = queued["params"]
    # queued: the trunk to the last point plus the two shorter cooldowns (f = 0.2, in whole
    # steps: the trainer's accounting, within a rounded step of the formula)
    trained = 6 * n * (points[2] + 0.2 * (points[0] + points[1]))
    assert queued["flops"] == pytest.approx(trained, rel=1e-3)
    worker = simulated_worker(client)
    worker.tick()
    worker.tick()
    job = client.get(f"/v1/jobs/{job_id}").json()
    assert job["status"] == "succeeded", job["error"]
    runs = {run["run_key"]: run for run in runs_of(client)}
    own = f"job-{job_id}"
    assert set(runs) == {own, f"{own}@{round(points[0])}", f"{own}@{round(points[1])}"}
    assert job["result_run_id"] == runs[own]["id"]
    assert runs[own]["tokens"] == points[-1]
    for run in runs.values():
        assert (run["loss_provenance"], run["trunk_key"]) == ("after_cooldown", own)
        assert run["cooldown_fraction"] == pytest.approx(0.2)
    branch_flops = sum(run["flops"] for run in runs.values())
    assert job["flops"] == pytest.approx(queued["flops"], rel=1e-3)  # as trained, as planned
    assert job["flops"] < branch_flops  # the trunk counted once, not once per branch
    assert job["flops"] > runs[own]["flops"]  # the cooldowns count too
    state: Any = client.app.state  # type: ignore[attr-defined]
    with session_scope(state.session_factory) as session:
        experiment_id = job_store.get(session, job_id).experiment_id
        assert job_store.started(session, experiment_id).flops == pytest.approx(job["flops"])


class HalfBadExecutor(SimulatedExecutor):
    """The job's own run is fine; one branch's loss is not a loss."""

    def poll(self, handle: str) -> Outcome:
        outcome = super().poll(handle)
        bad = {**outcome.runs[1], "loss": -1.0}
        return Outcome("succeeded", 1.0, (outcome.runs[0], bad), trained_flops=1e18)


def test_a_job_whose_points_cannot_all_be_stored_stores_none(client: TestClient) -> None:
    make_experiment(client)
    (job_id,) = queue(client, [{"params": 1e8, "tokens": 2e9, "trainer": WSD}])
    state: Any = client.app.state  # type: ignore[attr-defined]
    executor = HalfBadExecutor(preset("epoch-2024").law, "epoch-2024")
    worker = Worker(state.session_factory, executor, state.fit_policy, worker_id="w")
    worker.tick()
    worker.tick()
    job = client.get(f"/v1/jobs/{job_id}").json()
    assert job["status"] == "failed"
    assert job["error"].startswith("result not stored")
    assert job["result_run_id"] is None
    assert runs_of(client) == []
    with session_scope(state.session_factory) as session:
        assert job_store.started(session, job_store.get(session, job_id).experiment_id).flops == 0


@pytest.mark.slow(seconds=8)
def test_the_autopilot_plans_runs_with_cooldown_branches_and_ends_in_an_answer(
    client: TestClient,
) -> None:
    """On simulated runs with trunk-correlated noise, the autopilot picks several-point runs
    where they give more information per FLOP, stores every point, charges what was trained,
    and stops with a recommendation and its interval."""
    make_experiment(client, "auto")
    settings = {
        "enabled": True,
        "experiment_budget_flops": 3e22,
        "target_flops": 1e24,
        "max_flops_per_run": 1e21,
        "min_flops_per_run": 1e18,
        "stop_when_n_opt_width_below": 0.5,
        "bootstrap": 50,
        "batch_size": 6,
        "max_branches_per_run": 3,
    }
    assert client.put("/v1/experiments/auto/autofill", json=settings).status_code == 200
    worker = simulated_worker(client)
    status: dict[str, Any] = {}
    for _ in range(40):
        worker.tick()
        status = client.get("/v1/experiments/auto/autofill").json()
        if status["state"] in ("done", "exhausted"):
            break
    assert status["state"] in ("done", "exhausted"), status
    jobs = client.get("/v1/jobs", params={"experiment": "auto", "limit": 1000}).json()["items"]
    assert {job["status"] for job in jobs} == {"succeeded"}
    branched = [job for job in jobs if job["config"]["trainer"].get("schedule") == "wsd"]
    assert branched, "no several-point run was planned"
    assert all(job["config"]["plan"]["phase"] == "active" for job in branched)
    runs = runs_of(client, "auto")
    for job in branched:
        points = job["config"]["trainer"]["branch_tokens"]
        assert 2 <= len(points) <= 3
        mine = [run for run in runs if run["trunk_key"] == f"job-{job['id']}"]
        assert sorted(run["tokens"] for run in mine) == points
        assert job["flops"] < sum(run["flops"] for run in mine)
    assert len(runs) == len(jobs) + sum(
        len(job["config"]["trainer"]["branch_tokens"]) - 1 for job in branched
    )
    assert status["spent_flops"] == pytest.approx(sum(job["flops"] for job in jobs))
    assert status["spent_flops"] <= settings["experiment_budget_flops"] * (1 + 1e-9)
    answer = client.get("/v1/experiments/auto/recommendation", params={"flops": 1e24}).json()
    low, high = answer["intervals"]["params"]["low"], answer["intervals"]["params"]["high"]
    assert low < answer["params"] < high


# Seconds of real training: once, on SQLite (the database code is the simulated tests').
@pytest.mark.slow(seconds=20)
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_real_wsd_job_stores_its_branches(
    client: TestClient,
    database_url: str,
    tmp_path: Path,
    corpus_cache: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The real path: the trainer's branches become runs with the trainer's own accounting."""
    make_experiment(client)
    short, long = 20 * 8 * 32, 40 * 8 * 32
    trainer = {
        **request_trainer(monkeypatch, corpus_cache, tokens=long),
        "schedule": "wsd",
        "branch_tokens": [short, long],
    }
    (job_id,) = queue(client, [{"params": 2e4, "tokens": long, "trainer": trainer}])
    state: Any = client.app.state  # type: ignore[attr-defined]
    worker = Worker(state.session_factory, LocalExecutor(tmp_path / "jobs"), state.fit_policy)
    deadline = time.monotonic() + 120
    try:
        while client.get(f"/v1/jobs/{job_id}").json()["status"] in ("queued", "running"):
            assert time.monotonic() < deadline
            worker.tick()
            time.sleep(0.2)
    finally:
        worker.shutdown()
    job = client.get(f"/v1/jobs/{job_id}").json()
    assert job["status"] == "succeeded", job["error"]
    runs = sorted(runs_of(client), key=lambda run: run["tokens"])
    assert [(run["run_key"], run["tokens"]) for run in runs] == [
        (f"job-{job_id}@{short}", short),
        (f"job-{job_id}", long),
    ]
    assert {run["trunk_key"] for run in runs} == {f"job-{job_id}"}
    assert {run["source"] for run in runs} == {"worker"}
    assert job["result_run_id"] == runs[1]["id"]
    # the trainer's trained_flops_6nd: 40 steps of trunk and final cooldown plus 4 of the other
    assert job["flops"] == pytest.approx(runs[1]["flops"] * (long + 0.2 * short) / long)
