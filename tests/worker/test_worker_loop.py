"""The worker over the database: jobs to runs exactly once, leases, cancels, the autopilot."""

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from service.db import session_scope
from service.scaling import Chinchilla, preset
from service.store import jobs as job_store
from service.store.models import Fit, Job
from service.worker.executors.base import Outcome
from service.worker.executors.local import LocalExecutor
from service.worker.executors.simulated import SimulatedExecutor
from service.worker.loop import Worker
from tests.conftest import make_experiment
from tests.worker.conftest import request_trainer


def simulated_worker(client: TestClient, name: str = "sim", **options: Any) -> Worker:
    state: Any = client.app.state  # type: ignore[attr-defined]
    executor = SimulatedExecutor(preset("epoch-2024").law, "epoch-2024", noise=0.01)
    return Worker(state.session_factory, executor, state.fit_policy, worker_id=name, **options)


def queue(client: TestClient, runs: list[dict[str, Any]], name: str = "exp") -> list[Any]:
    response = client.post(f"/v1/experiments/{name}/jobs", json={"runs": runs})
    assert response.status_code == 201, response.text
    return [job["id"] for job in response.json()]


def runs_of(client: TestClient, name: str = "exp") -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = client.get(
        f"/v1/experiments/{name}/runs", params={"limit": 1000}
    ).json()["items"]
    return items


def test_jobs_become_runs_exactly_once(client: TestClient) -> None:
    make_experiment(client)
    ids = queue(client, [{"params": 1e8 * (k + 1), "tokens": 2e9} for k in range(3)])
    worker = simulated_worker(client)
    for _ in range(3):
        worker.tick()
    jobs = [client.get(f"/v1/jobs/{job_id}").json() for job_id in ids]
    assert [job["status"] for job in jobs] == ["succeeded"] * 3
    runs = runs_of(client)
    assert sorted(run["run_key"] for run in runs) == sorted(f"job-{i}" for i in ids)
    assert {run["source"] for run in runs} == {"simulated"}
    assert {job["result_run_id"] for job in jobs} == {run["id"] for run in runs}
    listed = client.get("/v1/jobs", params={"experiment": "exp", "status": "succeeded"}).json()
    assert len(listed["items"]) == 3


def test_duplicates_of_runs_and_jobs_are_refused(client: TestClient) -> None:
    """Judged on the built shape and tokens: 1.01e8 params builds the shape 1e8 built."""
    make_experiment(client)
    (first,) = queue(client, [{"params": 1e8, "tokens": 2e9}])
    worker = simulated_worker(client)
    for _ in range(2):
        worker.tick()
    assert client.get(f"/v1/jobs/{first}").json()["status"] == "succeeded"
    refused = client.post(
        "/v1/experiments/exp/jobs",
        json={"runs": [{"params": 1.01e8, "tokens": 2e9}, {"params": 5e8, "tokens": 1e9}]},
    )
    assert refused.status_code == 409
    duplicate = refused.json()["error"]["details"]["duplicates"][0]
    assert duplicate["row"] == 0
    assert duplicate["shape"] == client.get(f"/v1/jobs/{first}").json()["config"]["built"]["shape"]
    queue(client, [{"params": 5e8, "tokens": 1e9}])
    again = client.post("/v1/experiments/exp/jobs", json={"runs": [{"params": 5e8, "tokens": 1e9}]})
    assert again.status_code == 409
    assert client.get("/v1/jobs").json()["items"][0]["status"] == "queued"


def test_a_dead_workers_job_is_requeued_and_done_once(client: TestClient) -> None:
    make_experiment(client)
    (job_id,) = queue(client, [{"params": 1e8, "tokens": 2e9}])
    state: Any = client.app.state  # type: ignore[attr-defined]
    with session_scope(state.session_factory) as session:
        (claimed,) = job_store.claim(session, "dead-worker", 1)
        claimed.heartbeat_at = datetime.now(UTC) - timedelta(minutes=10)
    survivor = simulated_worker(client, lease=timedelta(seconds=30))
    survivor.tick()  # requeues the dead worker's job and claims it
    survivor.tick()
    job = client.get(f"/v1/jobs/{job_id}").json()
    assert job["status"] == "succeeded"
    assert job["attempts"] == 2
    assert len(runs_of(client)) == 1


def test_jobs_fail_after_max_attempts(client: TestClient) -> None:
    make_experiment(client)
    response = client.post(
        "/v1/experiments/exp/jobs",
        json={"runs": [{"params": 1e8, "tokens": 2e9}], "max_attempts": 1},
    )
    job_id = response.json()[0]["id"]
    state: Any = client.app.state  # type: ignore[attr-defined]
    with session_scope(state.session_factory) as session:
        (claimed,) = job_store.claim(session, "dead-worker", 1)
        claimed.heartbeat_at = datetime.now(UTC) - timedelta(minutes=10)
    simulated_worker(client, lease=timedelta(seconds=30)).tick()
    job = client.get(f"/v1/jobs/{job_id}").json()
    assert job["status"] == "failed"
    assert "stopped answering" in job["error"]
    assert runs_of(client) == []


def test_two_workers_never_claim_the_same_job(client: TestClient) -> None:
    make_experiment(client)
    queue(client, [{"params": 1e7, "tokens": 1e9 * 1.05**k} for k in range(40)])
    state: Any = client.app.state  # type: ignore[attr-defined]
    claimed: dict[str, list[int]] = {"a": [], "b": []}

    def claim(owner: str) -> None:
        for _ in range(20):
            with session_scope(state.session_factory) as session:
                claimed[owner] += [job.id for job in job_store.claim(session, owner, 2)]

    threads = [threading.Thread(target=claim, args=(owner,)) for owner in claimed]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not set(claimed["a"]) & set(claimed["b"])
    assert len(claimed["a"]) + len(claimed["b"]) == 40


def test_cancelling_a_running_job_kills_its_process(
    client: TestClient, tmp_path: Path, corpus_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_experiment(client)
    trainer = request_trainer(monkeypatch, corpus_cache, tokens=20_000_000)
    (job_id,) = queue(client, [{"params": 2e4, "tokens": 2e7, "trainer": trainer}])
    state: Any = client.app.state  # type: ignore[attr-defined]
    executor = LocalExecutor(tmp_path / "jobs", time_limit_s=300)
    worker = Worker(state.session_factory, executor, state.fit_policy, worker_id="w")
    worker.tick()
    pid = int(worker.handles[job_id].split(":")[1])
    assert client.get(f"/v1/jobs/{job_id}").json()["status"] == "running"
    assert client.post(f"/v1/jobs/{job_id}:cancel").json()["cancel_requested"] is True
    worker.tick()
    job = client.get(f"/v1/jobs/{job_id}").json()
    assert job["status"] == "cancelled"
    import os

    try:
        os.kill(pid, 0)
        alive = True
    except ProcessLookupError:
        alive = False
    assert not alive
    assert client.post(f"/v1/jobs/{job_id}:cancel").status_code == 409


def test_queued_job_cancel_is_immediate(client: TestClient) -> None:
    make_experiment(client)
    (job_id,) = queue(client, [{"params": 1e8, "tokens": 2e9}])
    assert client.post(f"/v1/jobs/{job_id}:cancel").json()["status"] == "cancelled"
    simulated_worker(client).tick()
    assert runs_of(client) == []


def test_shutdown_gives_running_jobs_back(
    client: TestClient, tmp_path: Path, corpus_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_experiment(client)
    trainer = request_trainer(monkeypatch, corpus_cache, tokens=20_000_000)
    (job_id,) = queue(client, [{"params": 2e4, "tokens": 2e7, "trainer": trainer}])
    state: Any = client.app.state  # type: ignore[attr-defined]
    worker = Worker(state.session_factory, LocalExecutor(tmp_path / "jobs"), state.fit_policy)
    worker.tick()
    worker.shutdown()
    job = client.get(f"/v1/jobs/{job_id}").json()
    assert job["status"] == "queued"
    assert job["attempts"] == 0


def test_autopilot_plans_fits_and_stops(client: TestClient, database_url: str) -> None:
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
    }
    put = client.put("/v1/experiments/auto/autofill", json=settings)
    assert put.status_code == 200, put.text
    assert put.json()["state"] == "waiting"
    worker = simulated_worker(client)
    phases = set()
    for _ in range(40):
        worker.tick()
        status = client.get("/v1/experiments/auto/autofill").json()
        jobs = client.get("/v1/jobs", params={"experiment": "auto", "limit": 1000}).json()
        phases |= {job["config"]["plan"]["phase"] for job in jobs["items"]}
        if status["state"] in ("done", "exhausted"):
            break
    assert status["state"] in ("done", "exhausted"), status
    assert phases == {"seed", "active"}
    assert status["spent_flops"] <= 3e22 * (1 + 1e-9)
    assert status["n_opt_width"] is not None
    fits = client.get("/v1/experiments/auto/fits").json()["items"]
    assert any(fit["status"] == "succeeded" for fit in fits)
    engine = sa.create_engine(database_url)
    with engine.connect() as connection:
        origins = set(connection.execute(sa.select(Job.origin)).scalars())
    engine.dispose()
    assert origins == {"autofill"}


def test_autopilot_stops_at_its_run_cap(client: TestClient) -> None:
    make_experiment(client, "capped")
    # A width never reached: the cap stops it.
    settings = {**AUTO, "stop_when_n_opt_width_below": 0.01, "experiment_max_runs": 19}
    put = client.put("/v1/experiments/capped/autofill", json=settings)
    assert put.status_code == 200, put.text
    assert (put.json()["runs"], put.json()["remaining_runs"]) == (0, 19)
    worker = simulated_worker(client)
    for _ in range(40):
        worker.tick()
        status = client.get("/v1/experiments/capped/autofill").json()
        if status["state"] in ("done", "exhausted", "blocked"):
            break
    assert status["state"] == "exhausted", status
    assert "run cap is spent (19 of 19 runs)" in status["message"]
    assert (status["runs"], status["remaining_runs"]) == (19, 0)
    jobs = client.get("/v1/jobs", params={"experiment": "capped", "limit": 1000}).json()["items"]
    assert len(jobs) == 19  # the seed's 15, then an active batch cut to the 4 runs left
    active = [job for job in jobs if job["config"]["plan"]["phase"] == "active"]
    assert len(active) == 4
    assert status["spent_flops"] <= 3e22 * (1 + 1e-9)
    # A cap under the seed's 15 runs stops it before it queues anything, saying why.
    make_experiment(client, "tiny")
    put = client.put("/v1/experiments/tiny/autofill", json={**settings, "experiment_max_runs": 10})
    assert put.status_code == 200, put.text
    worker.tick()
    status = client.get("/v1/experiments/tiny/autofill").json()
    assert status["state"] == "exhausted", status
    assert "need 15, max_runs is 10" in status["message"]
    assert not client.get("/v1/jobs", params={"experiment": "tiny"}).json()["items"]


def test_diverging_training_fails_the_job_and_stores_nothing(
    client: TestClient, tmp_path: Path, corpus_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_experiment(client)
    trainer = {**request_trainer(monkeypatch, corpus_cache, tokens=200 * 8 * 32), "lr": 50.0}
    (job_id,) = queue(client, [{"params": 2e4, "tokens": 200 * 8 * 32, "trainer": trainer}])
    state: Any = client.app.state  # type: ignore[attr-defined]
    worker = Worker(state.session_factory, LocalExecutor(tmp_path / "jobs"), state.fit_policy)
    import time

    deadline = time.monotonic() + 120
    while client.get(f"/v1/jobs/{job_id}").json()["status"] in ("queued", "running"):
        assert time.monotonic() < deadline
        worker.tick()
        time.sleep(0.2)
    job = client.get(f"/v1/jobs/{job_id}").json()
    assert job["status"] == "failed"
    assert job["error"].startswith(("training diverged", "training nan"))
    assert job["result_run_id"] is None
    assert runs_of(client) == []


AUTO = {
    "enabled": True,
    "experiment_budget_flops": 3e22,
    "target_flops": 1e24,
    "max_flops_per_run": 1e21,
    "min_flops_per_run": 1e18,
    "bootstrap": 20,
    "batch_size": 6,
}


def _fits(database_url: str) -> list[tuple[str, int | None]]:
    engine = sa.create_engine(database_url)
    with engine.connect() as connection:
        rows = connection.execute(sa.select(Fit.status, Fit.data_version).order_by(Fit.id)).all()
    engine.dispose()
    return [(status, version) for status, version in rows]


def test_a_failing_fit_widens_the_design_then_blocks_and_never_loops(
    client: TestClient, database_url: str
) -> None:
    """Losses that do not fall with params: every fit fails (exponent_at_bound). The
    autopilot fits each data version once, widens the design twice, then stops as blocked."""
    make_experiment(client, "flat")
    assert client.put("/v1/experiments/flat/autofill", json=AUTO).status_code == 200
    flat = Chinchilla(E=2.0, A=1e-6, B=400.0, alpha=0.3, beta=0.3)
    state: Any = client.app.state  # type: ignore[attr-defined]
    worker = Worker(state.session_factory, SimulatedExecutor(flat, "flat", 0.005), state.fit_policy)
    status: dict[str, Any] = {}
    for _ in range(40):
        worker.tick()
        status = client.get("/v1/experiments/flat/autofill").json()
        if status["state"] == "blocked":
            break
    assert status["state"] == "blocked", status
    assert "after 2 wider designs" in status["message"]
    assert "exponent_at_bound" in status["message"]
    jobs = client.get("/v1/jobs", params={"experiment": "flat", "limit": 1000}).json()["items"]
    widen = sorted({job["config"]["plan"].get("widen", 0) for job in jobs})
    assert widen == [0, 1, 2]
    wide = [job for job in jobs if job["config"]["plan"].get("widen") == 1]
    assert len(wide) >= 7 and all(job["status"] == "succeeded" for job in jobs)
    fits = _fits(database_url)
    assert [status for status, _ in fits] == ["failed"] * 3
    assert len({version for _, version in fits}) == 3  # one fit per data version
    for _ in range(5):  # stopped: nothing more is queued or fitted
        worker.tick()
    assert _fits(database_url) == fits
    after = client.get("/v1/jobs", params={"experiment": "flat", "limit": 1000}).json()["items"]
    assert len(after) == len(jobs)
    # New settings lift the stop; the data are unchanged, so the failed fit is not retried.
    again = client.put("/v1/experiments/flat/autofill", json={**AUTO, "bootstrap": 30})
    assert again.json()["state"] == "waiting"
    assert "failed" in again.json()["message"]


class FailingExecutor(SimulatedExecutor):
    """Every job fails, as a broken trainer would."""

    def poll(self, handle: str) -> Outcome:
        super().poll(handle)
        return Outcome("failed", error="trainer exited with code 7")


def test_jobs_failing_in_a_row_block_the_autopilot(client: TestClient) -> None:
    make_experiment(client, "broken")
    settings = {**AUTO, "batch_size": 2}
    assert client.put("/v1/experiments/broken/autofill", json=settings).status_code == 200
    state: Any = client.app.state  # type: ignore[attr-defined]
    executor = FailingExecutor(preset("epoch-2024").law, "epoch-2024", slots=2)
    worker = Worker(state.session_factory, executor, state.fit_policy)
    for _ in range(10):
        worker.tick()
    status = client.get("/v1/experiments/broken/autofill").json()
    assert status["state"] == "blocked"
    assert "trainer exited with code 7" in status["message"]
    assert status["spent_flops"] == 0.0  # failed jobs spend nothing
    jobs = client.get("/v1/jobs", params={"experiment": "broken", "limit": 1000}).json()["items"]
    assert len(jobs) == 15  # the seed, once: never queued again
    # New settings (the trainer fixed, say) lift the stop: the old failures no longer count.
    again = client.put("/v1/experiments/broken/autofill", json={**settings, "bootstrap": 30})
    assert again.json()["state"] == "waiting"
    worker.tick()
    after = client.get("/v1/jobs", params={"experiment": "broken", "limit": 1000}).json()["items"]
    assert len(after) == 30  # the seed queued again


def test_trainer_fields_never_choose_worker_paths(client: TestClient) -> None:
    """Caches and corpus directories on a worker are its operator's: refused before queueing."""
    make_experiment(client)
    for trainer in (
        {"cache_dir": "/tmp/elsewhere"},
        {"corpus": {"roots": ["dir:/etc"]}},
        {"corpus": {"roots": "stdlib"}},
    ):
        runs = [{"params": 1e7, "tokens": 1e9, "trainer": trainer}]
        for body in ({"runs": runs}, {"runs": runs[:1], "trainer": trainer}):
            refused = client.post("/v1/experiments/exp/jobs", json=body)
            assert refused.status_code == 422, (trainer, refused.text)
        bad_autopilot = client.put(
            "/v1/experiments/exp/autofill", json={**AUTO, "trainer": trainer}
        )
        assert bad_autopilot.status_code == 422
    assert client.get("/v1/jobs").json()["items"] == []
    fine = {"corpus": {"roots": ["stdlib", "site"]}}
    ok = client.post("/v1/experiments/exp/jobs", json={"runs": [{**runs[0], "trainer": fine}]})
    assert ok.status_code == 201, ok.text
