"""The whole loop on CPU with the real trainer at tiny scale: seed plan -> jobs -> runs -> fit ->
the next plan uses the fit."""

import time
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from service.worker.executors.local import LocalExecutor
from service.worker.loop import Worker
from tests.conftest import make_experiment

PLAN = {
    "target_flops": 1e14,
    "budget_flops": 2e12,
    "max_flops_per_run": 1e11,
    "min_flops_per_run": 1e9,
}


def test_seed_plan_to_runs_to_fit_to_active_plan(
    client: TestClient, tmp_path: Path, corpus_cache: Path
) -> None:
    make_experiment(client, "bytes", description="byte-level GPTs on the Python stdlib")
    trainer = {
        "corpus": {"roots": ["stdlib"], "max_bytes": 600_000, "val_tokens": 8_000},
        "cache_dir": str(corpus_cache),
        "eval_tokens": 2048,
        "device": "cpu",
        "threads": 1,
        "lr": 3e-3,
        "batch_tokens": 8 * 64,
        "shape": {"context_tokens": 64},  # the planner gives each job its size
    }
    seed = client.post("/v1/experiments/bytes/plans", json=PLAN).json()
    assert seed["phase"] == "seed"
    queued = client.post("/v1/experiments/bytes/jobs", json={"plan": PLAN, "trainer": trainer})
    assert queued.status_code == 201, queued.text
    jobs = queued.json()
    assert len(jobs) == len(seed["runs"]) >= 15

    state: Any = client.app.state  # type: ignore[attr-defined]
    executor = LocalExecutor(tmp_path / "jobs", cpu_slots=2, time_limit_s=300)
    worker = Worker(state.session_factory, executor, state.fit_policy, poll_seconds=0.2)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        worker.tick()
        pending = client.get("/v1/jobs", params={"status": "queued"}).json()["items"]
        if not pending and not worker.handles:
            break
        time.sleep(0.2)
    finished = client.get("/v1/jobs", params={"experiment": "bytes", "limit": 100}).json()
    assert {job["status"] for job in finished["items"]} == {"succeeded"}, [
        job["error"] for job in finished["items"] if job["error"]
    ]
    runs = client.get("/v1/experiments/bytes/runs", params={"limit": 100}).json()["items"]
    assert len(runs) == len(jobs)
    assert {run["source"] for run in runs} == {"worker"}
    experiment = client.get("/v1/experiments/bytes").json()
    assert experiment["corpus_hash"] == runs[0]["metadata"]["corpus_hash"]

    fitted = client.post("/v1/experiments/bytes/fits", json={"bootstrap": 50})
    assert fitted.status_code == 201, fitted.text
    active = client.post("/v1/experiments/bytes/plans", json=PLAN).json()
    assert active["phase"] == "active"
    assert active["sd_before"] is not None
    assert active["runs"]
    taken = {(run["params"], run["tokens"]) for run in runs}
    assert all((run["params"], run["tokens"]) not in taken for run in active["runs"])
