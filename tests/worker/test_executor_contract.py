"""One contract, every executor: a job becomes a run, cancel stops it, handles are checked."""

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from service.scaling import preset
from service.worker.executors.base import Executor, JobSpec, Outcome, UnknownHandleError
from service.worker.executors.local import LocalExecutor
from service.worker.executors.simulated import SimulatedExecutor
from tests.worker.conftest import tiny_trainer


@pytest.fixture(params=["local", "simulated"])
def executor(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Executor]:
    """Each executor but Ray (test_executor_contract_ray.py runs these tests on Ray)."""
    made: Executor
    if request.param == "local":
        made = LocalExecutor(tmp_path / "jobs", cpu_slots=2, time_limit_s=120)
    else:
        made = SimulatedExecutor(preset("epoch-2024").law, "epoch-2024", noise=0.01)
    yield made
    made.close()


def spec(job_id: int, cache: Path, **trainer: object) -> JobSpec:
    config = {**tiny_trainer(cache), **trainer}
    return JobSpec(job_id, "exp", 2e4, float(config["tokens"]), {"trainer": config})


def wait(executor: Executor, handle: str, timeout: float = 180) -> Outcome:
    deadline = time.monotonic() + timeout
    while True:
        outcome = executor.poll(handle)
        if outcome.state != "running":
            return outcome
        assert time.monotonic() < deadline, "job did not finish"
        time.sleep(0.2)


def test_a_job_becomes_a_run(executor: Executor, corpus_cache: Path) -> None:
    assert executor.slots >= 1
    outcome = wait(executor, executor.submit(spec(7, corpus_cache)))
    assert outcome.state == "succeeded", outcome.error
    assert outcome.run is not None
    assert outcome.run["run_key"] == "job-7"
    assert outcome.run["loss"] > 0
    assert outcome.run["params"] > 0
    assert outcome.run["tokens"] > 0
    assert outcome.run["source"] in ("worker", "simulated")


def test_cancel_stops_the_job(executor: Executor, corpus_cache: Path) -> None:
    handle = executor.submit(spec(8, corpus_cache, tokens=10_000_000))
    time.sleep(0.5)
    executor.cancel(handle)
    assert wait(executor, handle, timeout=30).state == "cancelled"
    with pytest.raises(UnknownHandleError):
        executor.poll(handle)


def test_unknown_handles_are_refused(executor: Executor) -> None:
    with pytest.raises(UnknownHandleError):
        executor.poll("job-404:1")
    with pytest.raises(UnknownHandleError):
        executor.cancel("job-404:1")


def test_local_job_failure_says_why(tmp_path: Path, corpus_cache: Path) -> None:
    local = LocalExecutor(tmp_path / "jobs")
    broken = spec(9, corpus_cache, dtype="float8")
    outcome = wait(local, local.submit(broken), timeout=60)
    assert outcome.state == "failed"
    assert "code 3" in (outcome.error or "")


def test_local_cancel_kills_the_process(tmp_path: Path, corpus_cache: Path) -> None:
    import os

    local = LocalExecutor(tmp_path / "jobs")
    handle = local.submit(spec(10, corpus_cache, tokens=10_000_000))
    pid = int(handle.split(":")[1])
    time.sleep(1.0)
    local.cancel(handle)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert wait(local, handle).state == "cancelled"


def test_simulated_losses_follow_the_law_and_repeat() -> None:
    law = preset("epoch-2024").law
    simulated = SimulatedExecutor(law, "epoch-2024", noise=0.01)
    job = JobSpec(3, "exp", 1e9, 2e10)
    first = wait(simulated, simulated.submit(job)).run
    again = wait(simulated, simulated.submit(job)).run
    assert first is not None and again is not None
    assert first["loss"] == again["loss"]
    clean = float(law.predict([1e9], [2e10])[0])
    assert abs(first["loss"] / clean - 1) < 0.05
    assert first["metadata"]["simulated"] is True


def test_a_local_wsd_job_becomes_the_run_of_its_longest_branch(
    tmp_path: Path, corpus_cache: Path
) -> None:
    """One run per job for now: the longest branch, marked as measured after a cooldown."""
    local = LocalExecutor(tmp_path / "jobs", time_limit_s=120)
    job = spec(11, corpus_cache, schedule="wsd", branch_tokens=[20 * 8 * 32, 40 * 8 * 32])
    try:
        outcome = wait(local, local.submit(job))
    finally:
        local.close()
    assert outcome.state == "succeeded", outcome.error
    assert outcome.run is not None
    assert (outcome.run["run_key"], outcome.run["tokens"]) == ("job-11", 40 * 8 * 32)
    assert outcome.run["metadata"]["loss_provenance"] == "after_cooldown"
    assert outcome.run["metadata"]["trunk_key"] == "job-11"
