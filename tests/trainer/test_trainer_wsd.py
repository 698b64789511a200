"""Warmup-stable-decay training: branches leave the trunk alone, count their own FLOPs, and end
where a cosine run of their length ends."""

from __future__ import annotations

import math
import statistics
from dataclasses import replace

import pytest

from service.trainer.config import TrainConfig
from service.trainer.counts import flops_6nd, flops_with_attention, param_counts
from service.trainer.loop import train
from service.trainer.result import TrainResult

STEP = 8 * 64  # tiny_config's tokens per step


def wsd(config: TrainConfig, *branch_steps: int) -> TrainConfig:
    return replace(config, schedule="wsd", branch_tokens=tuple(s * STEP for s in branch_steps))


def test_branching_leaves_the_trunk_untouched_and_counts_each_points_flops(
    tiny_config: TrainConfig,
) -> None:
    short = replace(tiny_config, tokens=40 * STEP)  # warmup 4 steps
    progress: list[tuple[int, int]] = []
    alone = train(wsd(short, 40))
    branched = train(
        wsd(short, 20, 40), progress=lambda step, steps, _: progress.append((step, steps))
    )
    assert alone.status == branched.status == "ok"

    # The trunk after the first branch (checkpoint, cool down, evaluate, resume) is the trunk
    # without it, bit for bit: so is the last branch that cools down from it, and the curve.
    assert branched.points[-1] == alone.points[-1]
    assert branched.train_loss_curve == alone.train_loss_curve
    assert branched.val_loss == alone.val_loss

    # One point per branch, each the FLOPs of a run of its length: trunk share plus cooldown.
    first, last = branched.points
    n = param_counts(short.shape).total_params  # = non-embedding + head: the tied head once
    assert (first.tokens, first.steps, first.cooldown_start_tokens) == (20 * STEP, 20, 16 * STEP)
    assert (last.tokens, last.steps, last.cooldown_start_tokens) == (40 * STEP, 40, 32 * STEP)
    for point in branched.points:
        assert point.loss_provenance == "after_cooldown"
        assert point.cooldown_fraction == 0.2
        trunk_share = point.cooldown_start_tokens
        assert trunk_share is not None
        cooldown_tokens = point.steps * STEP - trunk_share
        assert 5 * cooldown_tokens == point.tokens
        assert point.flops_6nd == 6.0 * n * (trunk_share + cooldown_tokens)
        assert point.flops_6nd == flops_6nd(short.shape, point.tokens)
        assert point.flops_with_attention == flops_with_attention(short.shape, point.tokens)
        assert point.val_bits_per_byte == pytest.approx(point.val_loss / math.log(2))
    assert first.val_loss > last.val_loss

    # The run stands for its longest point; the work done is the trunk once plus each cooldown.
    assert (branched.tokens, branched.steps, branched.flops_6nd) == (
        last.tokens,
        last.steps,
        last.flops_6nd,
    )
    work_steps = 32 + 4 + 8
    assert branched.trained_tokens == work_steps * STEP
    assert branched.trained_flops_6nd == flops_6nd(short.shape, work_steps * STEP)
    assert alone.trained_tokens == 40 * STEP
    assert progress == sorted(progress)
    assert progress[-1] == (work_steps, work_steps)


def test_cosine_mode_reports_its_one_point_at_the_end_of_the_schedule(
    tiny_config: TrainConfig,
) -> None:
    result = train(replace(tiny_config, tokens=20 * STEP))
    (point,) = result.points
    assert result.schedule == "cosine"
    assert point.loss_provenance == "end_of_schedule"
    assert point.cooldown_fraction is None and point.cooldown_start_tokens is None
    assert (point.tokens, point.steps, point.val_loss) == (result.tokens, 20, result.val_loss)
    assert point.flops_6nd == result.flops_6nd == result.trained_flops_6nd
    assert TrainResult.from_dict(result.to_dict()) == result


@pytest.mark.slow(seconds=20)
def test_a_branch_ends_within_seed_noise_of_a_cosine_run_of_its_length(
    tiny_config: TrainConfig,
) -> None:
    """Hägele et al. (2024): a 20% 1-sqrt cooldown matches cosine's final loss.

    Noise is the seed-to-seed spread: with s the pooled standard deviation over seeds of a final
    loss, the difference of two n-seed means has standard error s * sqrt(2 / n); the branch's
    mean must be within two of them of the cosine runs' mean. The branch at half the length,
    a real difference, must not be; and the cooldown is what brings the branch there: with the
    same seed, a trunk cooled down over a single step ends higher.
    """
    steps, seeds = 100, range(3)
    cosine = replace(tiny_config, tokens=steps * STEP)
    cosine_loss, branch_loss, half_loss, uncooled_loss = [], [], [], []
    for seed in seeds:
        cos = train(replace(cosine, seed=seed))
        branched = train(replace(wsd(cosine, steps // 2, steps), seed=seed))
        assert cos.val_loss is not None and branched.val_loss is not None
        cosine_loss.append(cos.val_loss)
        branch_loss.append(branched.val_loss)
        half_loss.append(branched.points[0].val_loss)
        uncooled = train(replace(wsd(cosine, steps), seed=seed, cooldown_fraction=0.01))
        assert uncooled.points[-1].cooldown_start_tokens == (steps - 1) * STEP
        assert uncooled.val_loss is not None
        uncooled_loss.append(uncooled.val_loss)
        assert branched.points[-1].flops_6nd == cos.flops_6nd
    pooled_sd = math.sqrt((statistics.variance(cosine_loss) + statistics.variance(branch_loss)) / 2)
    noise = 2 * pooled_sd * math.sqrt(2 / len(seeds))
    assert abs(statistics.mean(branch_loss) - statistics.mean(cosine_loss)) < noise
    assert statistics.mean(half_loss) - statistics.mean(cosine_loss) > noise
    assert all(b < u for b, u in zip(branch_loss, uncooled_loss, strict=True))
