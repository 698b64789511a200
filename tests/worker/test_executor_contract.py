"""One contract, every executor: a job becomes a run, cancel stops it, handles are checked."""

import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from service.scaling import preset
from service.schemas.runs import RunIn
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
    assert len(outcome.runs) == 1  # a cosine job has one point
    assert outcome.trained_flops == pytest.approx(outcome.run["flops"])


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


def test_a_wsd_job_becomes_a_run_per_branch(executor: Executor, corpus_cache: Path) -> None:
    """The job's own run (its longest branch) first, then the others; one trunk; the job's
    FLOPs are the trunk once plus every cooldown, not the sum of the branches'."""
    short, long = 20 * 8 * 32, 40 * 8 * 32
    job = spec(11, corpus_cache, schedule="wsd", branch_tokens=[short, long])
    outcome = wait(executor, executor.submit(job))
    assert outcome.state == "succeeded", outcome.error
    assert [(run["run_key"], run["tokens"]) for run in outcome.runs] == [
        ("job-11", long),
        (f"job-11@{short}", short),
    ]
    for run in outcome.runs:
        assert run["loss_provenance"] == "after_cooldown"
        assert run["cooldown_fraction"] == pytest.approx(0.2)
        assert run["trunk_key"] == "job-11"
        assert RunIn.model_validate(run).trunk_key == "job-11"
    own, branch = outcome.runs
    assert branch["flops"] == pytest.approx(own["flops"] * short / long)
    # trunk to the long branch's end plus the short branch's cooldown (0.2 x 20 = 4 steps)
    assert outcome.trained_flops == pytest.approx(own["flops"] * (long + 0.2 * short) / long)


def test_simulated_branches_share_trunk_noise() -> None:
    """Each point has the executor's noise; two points of one trunk are correlated by rho."""
    law = preset("epoch-2024").law
    simulated = SimulatedExecutor(law, "epoch-2024", noise=0.02, trunk_correlation=0.5)
    branches = [5e9, 1e10, 2e10]
    config = {"trainer": {"schedule": "wsd", "branch_tokens": branches}}
    errors = []
    for job_id in range(400):
        outcome = wait(simulated, simulated.submit(JobSpec(job_id, "e", 1e9, 2e10, config)))
        by_tokens = {run["tokens"]: run["loss"] for run in outcome.runs}
        clean = law.predict([1e9] * 3, branches)
        errors.append(np.log([by_tokens[d] for d in branches] / clean))
    eps = np.array(errors)
    assert np.std(eps, axis=0) == pytest.approx([0.02] * 3, rel=0.15)
    correlation = np.corrcoef(eps.T)[np.triu_indices(3, 1)]
    assert np.all(np.abs(correlation - 0.5) < 0.15), correlation
