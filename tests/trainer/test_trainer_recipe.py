from __future__ import annotations

from itertools import pairwise

import pytest

from service.trainer.config import ModelShape, TrainConfig
from service.trainer.errors import ConfigError
from service.trainer.recipe import (
    DEEPSEEK_MIN_FLOPS,
    SMALL_SCALE_MAX_FLOPS,
    TARGET_STEPS,
    deepseek_batch_tokens,
    deepseek_lr,
    lr_at,
    make_plan,
    min_tokens,
    peak_lr,
    warmup_steps,
)

SHAPE = ModelShape(n_layer=2, d_model=64, n_head=1, context_tokens=128)


def test_schedule_warms_up_then_ends_exactly_at_the_floor() -> None:
    config = TrainConfig(shape=SHAPE, tokens=1000 * 4 * 128, batch_tokens=4 * 128, lr=1e-3)
    plan = make_plan(config)
    assert plan.steps == 1000
    assert plan.warmup_steps == 100  # at least min(100 steps, 10%): more than 2% here
    lrs = [lr_at(s, plan, 0.1) for s in range(plan.steps)]
    assert lrs[99] == pytest.approx(1e-3)
    assert all(a < b for a, b in pairwise(lrs[:100]))
    assert all(a >= b for a, b in pairwise(lrs[99:]))
    assert lrs[-1] == pytest.approx(1e-4)
    assert lrs[-2] > lrs[-1]


def test_tokens_round_to_whole_batches() -> None:
    plan = make_plan(TrainConfig(shape=SHAPE, tokens=10_000, batch_tokens=1024))
    assert plan.tokens % 1024 == 0
    assert plan.tokens == plan.steps * 1024
    assert abs(plan.tokens - 10_000) <= 512


def test_recipe_scales_lr_down_and_batch_up_with_compute() -> None:
    small = make_plan(TrainConfig(shape=SHAPE, target_flops=1e13))
    large = make_plan(TrainConfig(shape=SHAPE, target_flops=1e16))
    assert large.peak_lr < small.peak_lr
    assert large.batch_seqs > small.batch_seqs
    assert deepseek_lr(1e16) == pytest.approx(0.3118 * 1e16**-0.125)
    assert deepseek_batch_tokens(1e16) == pytest.approx(0.2920 * 1e16**0.3271)


def test_beta2_is_099_at_small_batches_and_095_at_large() -> None:
    assert make_plan(TrainConfig(shape=SHAPE, tokens=10**6, batch_tokens=4096)).beta2 == 0.99
    big = TrainConfig(shape=SHAPE, tokens=10**8, batch_tokens=2**20)
    assert make_plan(big).beta2 == 0.95


def test_micro_batches_divide_the_batch() -> None:
    plan = make_plan(
        TrainConfig(shape=SHAPE, tokens=10**6, batch_tokens=12 * 128, micro_batch_seqs=5)
    )
    assert plan.micro_batch_seqs * plan.accum_steps == plan.batch_seqs == 12


def test_config_needs_exactly_one_budget() -> None:
    with pytest.raises(ConfigError):
        TrainConfig(shape=SHAPE)
    with pytest.raises(ConfigError):
        TrainConfig(shape=SHAPE, tokens=10, target_flops=1e9)


def test_config_round_trips_through_dict() -> None:
    config = TrainConfig(shape=SHAPE, target_flops=1e12, lr=1e-3)
    assert TrainConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ConfigError):
        TrainConfig.from_dict({**config.to_dict(), "bogus": 1})


@pytest.mark.parametrize(
    "bad", [{"dtype": "float16"}, {"compile": "yes"}, {"device": "tpu"}, {"warmup_frac": 1.5}]
)
def test_config_rejects_unknown_runtime_settings(bad: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        TrainConfig.from_dict({**TrainConfig(shape=SHAPE, tokens=10).to_dict(), **bad})


def test_small_runs_get_the_swept_lr_and_enough_steps() -> None:
    """Below 1e14 FLOPs: lr = 0.5 / d_model and at least TARGET_STEPS steps (the sweep's
    rules), not DeepSeek's lr and batch, which were measured at 1e17-3e20 FLOPs."""
    plan = make_plan(TrainConfig(shape=SHAPE, tokens=2_000_000))
    assert plan.peak_lr == pytest.approx(0.5 / 64)
    assert plan.steps >= TARGET_STEPS * 0.95
    assert plan.batch_tokens < deepseek_batch_tokens(plan.flops_6nd)
    assert plan.warmup_steps == 100
    one_seq = make_plan(TrainConfig(shape=SHAPE, tokens=300 * 128))
    assert one_seq.batch_seqs == 1 and one_seq.steps == 300  # never below one sequence
    assert min_tokens(64) == 256 * 64


def test_lr_moves_continuously_from_the_sweep_to_deepseek() -> None:
    wide = ModelShape(n_layer=8, d_model=512, n_head=8)
    assert peak_lr(wide, SMALL_SCALE_MAX_FLOPS) == pytest.approx(0.5 / 512)
    assert peak_lr(wide, DEEPSEEK_MIN_FLOPS) == pytest.approx(deepseek_lr(DEEPSEEK_MIN_FLOPS))
    assert peak_lr(wide, 1e19) == pytest.approx(deepseek_lr(1e19))
    grid = [10 ** (14 + k / 10) for k in range(31)]
    values = [peak_lr(wide, c) for c in grid]
    assert all(abs(b / a - 1) < 0.1 for a, b in pairwise(values))  # no jumps
    big = make_plan(TrainConfig(shape=wide, target_flops=1e19))
    assert big.batch_tokens == pytest.approx(deepseek_batch_tokens(big.flops_6nd), rel=0.01)


def test_warmup_rule() -> None:
    assert warmup_steps(256, 0.02) == 26  # 10% of a short run
    assert warmup_steps(5000, 0.02) == 100
    assert warmup_steps(100_000, 0.02) == 2000
    assert warmup_steps(1000, 0.0) == 0
