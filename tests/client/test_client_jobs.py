"""Plans, jobs and the autopilot through the clients; a simulated worker ticks in the test."""

from typing import Any

import pytest

from service.client import (
    AsyncScalingClient,
    ConflictError,
    NotFoundError,
    ScalingClient,
    ValidationError,
)
from service.schemas.jobs import AutofillSettings, JobOut, PlanOut
from tests.client.conftest import FAST_RETRY, JobServer, ticking
from tests.conftest import ADMIN_TOKEN

# The CPU demo of docs/autopilot.md: a cold start gets an IsoFLOP seed design within these.
TINY: dict[str, Any] = {
    "target_flops": 1e15,
    "budget_flops": 2e13,
    "max_flops_per_run": 1e12,
    "min_flops_per_run": 1e10,
    "trainer": {"shape": {"context_tokens": 64}},
}


def test_plan_queue_wait_cancel(job_server: JobServer) -> None:
    with ScalingClient(job_server.url, ADMIN_TOKEN, retry=FAST_RETRY) as api:
        api.create_experiment("tiny")
        plan = api.plan("tiny", **TINY)
        assert isinstance(plan, PlanOut)
        assert plan.phase == "seed"
        assert len(plan.runs) >= 10
        assert plan.total_flops <= TINY["budget_flops"]
        assert all(1e10 * 0.99 <= r.flops <= 1e12 * 1.01 for r in plan.runs)
        assert api.plan("tiny", TINY).runs == plan.runs  # a whole request gives the same
        with pytest.raises(TypeError):
            api.plan("tiny", target_flops=1e15)
        assert len(api.plan("tiny", **TINY, max_runs=15).runs) == 15
        with pytest.raises(ValidationError) as refused:
            api.plan("tiny", **TINY, max_runs=14)
        assert refused.value.code == "insufficient_runs"
        assert "need 15, max_runs is 14" in refused.value.message

        queued = api.queue_jobs("tiny", plan={**TINY, "batch_size": 4})
        # planned and built agree: the plan's shapes are what the jobs build
        assert [(j.params, j.config["built"]["shape"]["d_model"]) for j in queued] == [
            (r.params, r.shape["d_model"]) for r in plan.runs
        ]
        assert all(isinstance(job, JobOut) for job in queued)
        assert {job.origin for job in queued} == {"plan"}
        assert {job.status for job in queued} == {"queued"}
        explicit = api.queue_jobs(
            "tiny", runs=[{"params": 3e5, "tokens": 1e6}, {"params": 6e5, "tokens": 1e6}]
        )
        assert [job.origin for job in explicit] == ["request", "request"]
        with pytest.raises(ConflictError):
            api.queue_jobs("tiny", runs=[{"params": 3e5, "tokens": 1e6}])
        with pytest.raises(ValueError, match="exactly one"):
            api.queue_jobs("tiny")

        cancelled = api.cancel_job(explicit[1].id)
        assert cancelled.status == "cancelled"
        with pytest.raises(ConflictError):
            api.cancel_job(explicit[1].id)
        with pytest.raises(NotFoundError):
            api.get_job(10**9)

        everything = list(api.iter_jobs(experiment="tiny", page_size=2))
        assert len(everything) == len(queued) + 2
        assert [j.id for j in everything] == sorted((j.id for j in everything), reverse=True)
        by_request = api.list_jobs(experiment="tiny", origin="request").items
        assert {j.id for j in by_request} == {j.id for j in explicit}
        assert [j.id for j in api.iter_jobs(status="cancelled")] == [explicit[1].id]

        seen: list[JobOut] = []
        with ticking(job_server):
            done = api.wait_for_job(
                explicit[0].id, timeout=60, poll_interval=0.05, on_progress=seen.append
            )
            for job in queued:
                assert api.wait_for_job(job.id, timeout=60, poll_interval=0.05).status == (
                    "succeeded"
                )
        assert done.status == "succeeded"
        assert seen[-1].status == "succeeded"
        assert done.result_run_id is not None
        run = api.get_run(done.result_run_id)
        assert run.source == "simulated"
        assert run.params == done.params == done.config["built"]["params"]  # total, as built
        assert done.config["planned"]["params"] == 3e5
        assert run.flops == pytest.approx(6 * done.params * done.tokens)
        assert len(list(api.iter_jobs(experiment="tiny", status="succeeded"))) == len(queued) + 1
        with pytest.raises(TimeoutError):
            api.wait_for_job(
                api.queue_jobs("tiny", runs=[{"params": 9e5, "tokens": 1e6}])[0].id,
                timeout=0.1,
                poll_interval=0.05,
            )


def test_autofill_settings_and_the_autopilot(job_server: JobServer) -> None:
    with ScalingClient(job_server.url, ADMIN_TOKEN, retry=FAST_RETRY) as api:
        api.create_experiment("auto")
        off = api.get_autofill("auto")
        assert (off.state, off.settings, off.spent_flops) == ("off", None, 0.0)
        settings = AutofillSettings(
            enabled=True,
            experiment_budget_flops=TINY["budget_flops"],
            target_flops=TINY["target_flops"],
            max_flops_per_run=TINY["max_flops_per_run"],
            min_flops_per_run=TINY["min_flops_per_run"],
            trainer=TINY["trainer"],
            batch_size=4,
            bootstrap=20,
        )
        on = api.set_autofill("auto", settings)
        assert on.settings == settings
        assert on.state != "off"
        worker = job_server.worker()
        worker.tick()  # the autopilot plans and queues; the next ticks run them
        jobs = list(api.iter_jobs(experiment="auto", origin="autofill"))
        assert jobs
        worker.tick()
        worker.tick()
        worker.shutdown()
        now = api.get_autofill("auto")
        assert now.spent_flops > 0
        assert now.remaining_flops == pytest.approx(TINY["budget_flops"] - now.spent_flops)
        assert api.get_experiment("auto").run_count >= 1
        paused = api.set_autofill("auto", {**settings.model_dump(), "enabled": False})
        assert paused.settings is not None
        assert paused.settings.enabled is False
        with pytest.raises(NotFoundError):
            api.get_autofill("absent")


@pytest.mark.anyio
async def test_async_jobs(job_server: JobServer) -> None:
    async with AsyncScalingClient(job_server.url, ADMIN_TOKEN, retry=FAST_RETRY) as api:
        await api.create_experiment("tiny")
        plan = await api.plan("tiny", **TINY)
        assert plan.phase == "seed"
        (job,) = await api.queue_jobs(
            "tiny",
            runs=[{"params": 3e5, "tokens": 1e6, "trainer": {"lr": 0.01}}],
            trainer={"device": "cpu", "lr": 0.1},
        )
        assert job.config["trainer"]["device"] == "cpu"
        assert job.config["trainer"]["lr"] == 0.01  # the run's own field wins
        assert [j.id async for j in api.iter_jobs(experiment="tiny")] == [job.id]
        assert (await api.list_jobs(status="queued")).items[0].id == job.id
        assert (await api.get_job(job.id)).status == "queued"
        (other,) = await api.queue_jobs("tiny", runs=[{"params": 6e5, "tokens": 1e6}])
        assert (await api.cancel_job(other.id)).status == "cancelled"
        with ticking(job_server):
            done = await api.wait_for_job(job.id, timeout=60, poll_interval=0.05)
        assert done.status == "succeeded"
        assert (await api.get_autofill("tiny")).state == "off"
        out = await api.set_autofill(
            "tiny",
            {"experiment_budget_flops": 2e12, "target_flops": 1e14, "max_flops_per_run": 1e11},
        )
        assert out.settings is not None
        assert out.settings.enabled is False
