"""The warmup-stable-decay schedule's arithmetic and configuration (no training)."""

from __future__ import annotations

from itertools import pairwise

import pytest

from service.trainer.config import ModelShape, TrainConfig
from service.trainer.errors import ConfigError, JobError
from service.trainer.job import Job
from service.trainer.recipe import lr_at, make_plan
from service.trainer.schedule import Branch, make_branches, wsd_lr_at

SHAPE = ModelShape(n_layer=2, d_model=64, n_head=1, context_tokens=128)
STEP = 4 * 128  # tokens per step


def wsd(**changes: object) -> TrainConfig:
    fields: dict[str, object] = {
        "shape": SHAPE,
        "tokens": 1000 * STEP,
        "batch_tokens": STEP,
        "lr": 1e-3,
        "schedule": "wsd",
        **changes,
    }
    return TrainConfig(**fields)  # type: ignore[arg-type]


def test_each_branch_cools_down_over_its_last_fifth() -> None:
    config = wsd(branch_tokens=(250 * STEP, 500 * STEP + 100, 1000 * STEP))
    branches = make_branches(config, make_plan(config))
    assert branches == (Branch(200, 250), Branch(400, 500), Branch(800, 1000))
    assert [b.cooldown_fraction for b in branches] == [0.2, 0.2, 0.2]


def test_without_branch_tokens_the_horizon_is_the_one_branch() -> None:
    config = wsd(cooldown_fraction=0.25)
    assert make_branches(config, make_plan(config)) == (Branch(750, 1000),)


def test_the_cooldown_fraction_is_reported_as_rounded_to_steps() -> None:
    config = wsd(branch_tokens=(333 * STEP,))
    (branch,) = make_branches(config, make_plan(config))
    assert branch == Branch(333 - 67, 333)
    assert branch.cooldown_fraction == pytest.approx(67 / 333)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"branch_tokens": (120 * STEP,)}, "before the warmup"),  # warmup 100 steps; start 96
        ({"branch_tokens": (200 * STEP, 200 * STEP + 1)}, "same step"),
        ({"target_flops": 1e12, "tokens": None, "branch_tokens": (10**9,)}, "past the horizon"),
        ({"branch_tokens": (1001 * STEP,)}, "past the horizon"),
    ],
)
def test_impossible_branches_are_refused(changes: dict[str, object], message: str) -> None:
    config = wsd(**changes)
    with pytest.raises(ConfigError, match=message):
        make_branches(config, make_plan(config))


def test_a_branch_at_the_horizon_rounded_up_to_whole_batches_is_the_horizon() -> None:
    # The service writes branch tokens as whole batches; the last may exceed the raw token
    # count by part of a batch (the autopilot's real-training loop failed its jobs on this).
    config = wsd(tokens=1000 * STEP - 100, branch_tokens=(500 * STEP, 1000 * STEP))
    plan = make_plan(config)
    assert plan.tokens == 1000 * STEP
    assert make_branches(config, plan)[-1] == Branch(800, 1000)
    job = Job.from_dict({"job_id": "j", "experiment": "e", "config": config.to_dict()})
    assert job.config.branch_tokens[-1] == 1000 * STEP


def test_a_job_with_impossible_branches_is_a_bad_job() -> None:
    config = wsd(branch_tokens=(120 * STEP,)).to_dict()
    with pytest.raises(JobError, match="before the warmup"):
        Job.from_dict({"job_id": "j", "experiment": "e", "config": config})


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"schedule": "cosine", "branch_tokens": (STEP,)}, "need schedule wsd"),
        ({"schedule": "linear"}, "cosine or wsd"),
        ({"branch_tokens": (2 * STEP, STEP)}, "strictly increasing"),
        ({"branch_tokens": (0,)}, "positive integers"),
        ({"cooldown_fraction": 0.0}, r"\(0, 1\]"),
        ({"cooldown_fraction": 1.5}, r"\(0, 1\]"),
    ],
)
def test_bad_schedule_fields_are_config_errors(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        wsd(**changes)


def test_schedule_fields_round_trip_through_json() -> None:
    config = wsd(branch_tokens=(500 * STEP, 1000 * STEP), cooldown_fraction=0.1)
    data = config.to_dict()
    assert data["branch_tokens"] == [500 * STEP, 1000 * STEP]
    assert TrainConfig.from_dict(data) == config
    data["branch_tokens"] = [2.56e5, 5.12e5]  # JSON writers' 1e6 for 1000000
    assert TrainConfig.from_dict(data).branch_tokens == (256_000, 512_000)


def test_trunk_warms_up_like_cosine_then_holds_the_peak() -> None:
    config = wsd()
    plan = make_plan(config)
    assert plan.warmup_steps == 100
    for step in range(plan.warmup_steps):
        assert wsd_lr_at(step, plan, 0.1, None) == lr_at(step, plan, 0.1)
    assert {wsd_lr_at(step, plan, 0.1, None) for step in range(99, 1000)} == {1e-3}


def test_cooldown_is_one_minus_sqrt_down_to_the_floor() -> None:
    plan = make_plan(wsd())
    branch = Branch(400, 500)
    lrs = [wsd_lr_at(step, plan, 0.1, branch) for step in range(500)]
    assert lrs[399] == 1e-3  # the trunk's last step
    assert all(a > b for a, b in pairwise(lrs[399:]))
    # A quarter of the cooldown done: 1 - sqrt(1/4) = half of the way from peak to floor.
    assert lrs[424] == pytest.approx(1e-4 + 0.5 * 9e-4)
    assert lrs[-1] == pytest.approx(1e-4)
