"""Runs with several points through the worker: a WSD job stores one run per branch, all or
none, linked to the job and its trunk, and the budget counts what the job really trained."""

from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.db import session_scope
from service.scaling import preset
from service.store import jobs as job_store
from service.worker.executors.base import Outcome
from service.worker.executors.simulated import SimulatedExecutor
from service.worker.loop import Worker
from tests.conftest import make_experiment
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
        assert job_store.spent_flops(session, experiment_id) == pytest.approx(job["flops"])


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
        assert job_store.spent_flops(session, job_store.get(session, job_id).experiment_id) == 0
