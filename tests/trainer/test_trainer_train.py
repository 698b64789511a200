from __future__ import annotations

import math
from dataclasses import replace

import pytest

from service.trainer.config import TrainConfig
from service.trainer.counts import flops_6nd, flops_with_attention, param_counts
from service.trainer.loop import train


def test_tiny_model_learns_well_below_uniform(tiny_config: TrainConfig) -> None:
    seen: list[tuple[int, int, float]] = []
    result = train(tiny_config, progress=lambda *args: seen.append(args))
    counts = param_counts(tiny_config.shape)
    assert 40_000 < counts.total_params < 70_000
    assert result.status == "ok"
    assert result.steps == 300
    assert result.val_loss is not None
    assert result.val_loss < math.log(256) - 2.0
    assert result.val_bits_per_byte == pytest.approx(result.val_loss / math.log(2))
    first, last = result.train_loss_curve[0], result.train_loss_curve[-1]
    assert first[0] == 1
    assert last[0] == 300
    assert first[1] > last[1] + 2.0
    steps = [s for s, _ in result.train_loss_curve]
    assert steps == sorted(set(steps))
    assert result.tokens == 300 * 8 * 64
    assert result.total_params == counts.total_params
    assert result.flops_6nd == flops_6nd(tiny_config.shape, result.tokens)
    assert result.flops_with_attention == flops_with_attention(tiny_config.shape, result.tokens)
    assert result.mfu is None
    assert result.epochs == pytest.approx(result.tokens / result.unique_train_tokens)
    assert result.versions["torch"]
    # Progress reports every curve point (and every 100th step) in order, read back in batches.
    reported = [step for step, _, _ in seen]
    assert reported == sorted(reported)
    assert {step for step, _ in result.train_loss_curve} <= set(reported)
    assert {100, 200, 300} <= set(reported)
    assert all(total == 300 for _, total, _ in seen)


def test_fixed_seed_repeats_exactly_and_seeds_differ(tiny_config: TrainConfig) -> None:
    short = replace(tiny_config, tokens=40 * 8 * 64)
    a, b = train(short), train(short)
    c = train(replace(short, seed=1))
    assert a.train_loss_curve == b.train_loss_curve
    assert a.val_loss == b.val_loss
    assert c.val_loss != a.val_loss


def test_exploding_learning_rate_is_reported_not_raised(tiny_config: TrainConfig) -> None:
    seen: list[tuple[int, float]] = []
    result = train(
        replace(tiny_config, tokens=200 * 8 * 64, lr=50.0, grad_clip=1e9),
        progress=lambda step, steps, loss: seen.append((step, loss)),
    )
    assert result.status in ("nan", "diverged")
    assert result.val_loss is None
    # Losses are read back a few at a time: the last one reported is the bad one, and the
    # run stopped within a handful of steps of it.
    last_step, last_loss = seen[-1]
    assert not math.isfinite(last_loss) or last_loss > 1.5 * math.log(256)
    assert 0 <= result.steps - last_step < 10
    assert result.steps < 200


def test_time_limit_stops_the_run(tiny_config: TrainConfig) -> None:
    result = train(replace(tiny_config, tokens=10**7, time_limit_s=1.0))
    assert result.status == "timeout"
    assert result.tokens < 10**7
    assert result.val_loss is None


def test_many_epochs_warn(tiny_config: TrainConfig) -> None:
    small = replace(tiny_config.corpus, max_bytes=120_000, val_tokens=10_000)
    result = train(
        replace(tiny_config, corpus=small, tokens=100 * 8 * 64 * 10, batch_tokens=8 * 64 * 10)
    )
    assert result.epochs > 4
    assert any("epochs" in w for w in result.warnings)
