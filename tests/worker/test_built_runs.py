"""What the service writes into a job file is a job the trainer accepts, and trains the points
the service counted: whole batches, the last at the horizon."""

from hypothesis import given, settings
from hypothesis import strategies as st

from service.jobs.planning import build_run
from service.schemas.jobs import JobRunSpec
from service.trainer.job import Job
from service.trainer.recipe import make_plan
from service.trainer.schedule import make_branches


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    params=st.floats(min_value=7e3, max_value=2e5),
    steps=st.floats(min_value=2000, max_value=6000),
    context=st.sampled_from([16, 32, 64]),
)
def test_a_planned_run_with_branches_is_a_job_the_trainer_accepts(
    params: float, steps: float, context: int
) -> None:
    tokens = steps * context * 3.7  # not whole batches of any size
    ladder = [round(tokens / 4), round(tokens / 2), round(tokens)]
    trainer = {"device": "cpu", "shape": {"context_tokens": context}, "schedule": "wsd"}
    built = build_run(
        JobRunSpec(params=params, tokens=tokens, trainer={**trainer, "branch_tokens": ladder})
    )
    job = Job.from_dict({"job_id": "j", "experiment": "e", "config": built.trainer})
    plan = make_plan(job.config)
    ends = [b.end_step * plan.batch_tokens for b in make_branches(job.config, plan)]
    assert ends == list(built.branch_tokens)
    assert built.tokens == built.branch_tokens[-1] == plan.tokens
