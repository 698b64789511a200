"""Per-scale recipe: batch, learning rate, beta2, warmup and the cosine schedule.

Two regimes, with C the run's 6ND FLOPs:

- DeepSeek LLM (2024) hyper-parameter laws where they were measured (C >= 1e17):
  lr = 0.3118 C^-0.125, batch = 0.2920 C^0.3271 tokens.
- Small scale (C <= 1e14), from our own sweep (bench/recipe_sweep.py; the tables and their
  provenance in bench/results/recipe_sweep.md; byte-level GPTs of 7k-250k total params, context
  64, 2.5e5-2e6 tokens, CPU). At 256 steps the best peak lr was about 0.25 / d_model at every
  size and length (d_model 16: 1.6e-2, 32: 8e-3-1.6e-2, 64: 4e-3, 96: 2e-3, each the best of
  1e-3 to 3.2e-2); at equal tokens more optimizer steps always won (64 to 1024 steps at 1e6
  tokens: 0.6-0.95 nats better), so the batch is capped at tokens / TARGET_STEPS; with those
  steps, four heads and 10% warmup, 0.5-1.0 / d_model beat 0.25 / d_model at every size
  (0.5 / d_model within 0.05 nats of the best, and best at 246k params): lr = 0.5 / d_model.
  DeepSeek's rules applied there gave 3-20x larger batches and up to 3x larger lrs, and
  bigger models came out worse at equal tokens.
- Between 1e14 and 1e17 the lr moves log-linearly from the small-scale rule to DeepSeek's.

Warmup: at least ``warmup_frac`` of the steps, and at least min(100 steps, 10% of the steps)
(sweep: 10% beat 2% by 0.02-0.03 nats at 256 steps). Porian et al. (2024): beta2 0.99 at small
batches; cosine decay ends at the run's last token.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from service.trainer.config import ModelShape, TrainConfig
from service.trainer.counts import flops_6nd, tokens_for_flops

SMALL_BATCH_TOKENS = 262_144
# The small-scale rules hold up to SMALL_SCALE_MAX_FLOPS; DeepSeek's from DEEPSEEK_MIN_FLOPS.
SMALL_SCALE_MAX_FLOPS = 1e14
DEEPSEEK_MIN_FLOPS = 1e17
# Peak lr x d_model at small scale (the sweep's best at the largest size it tried).
SMALL_LR_TIMES_WIDTH = 0.5
# At most tokens / TARGET_STEPS tokens per batch (at least one sequence).
TARGET_STEPS = 1024
# A run needs at least this many optimizer steps to be evidence (the planner's floor).
MIN_STEPS = 256
MIN_WARMUP_STEPS = 100


@dataclass(frozen=True)
class Plan:
    """What the loop will actually do."""

    tokens: int
    steps: int
    batch_seqs: int
    micro_batch_seqs: int
    accum_steps: int
    peak_lr: float
    beta2: float
    warmup_steps: int
    flops_6nd: float

    @property
    def batch_tokens(self) -> int:
        return self.tokens // self.steps


def deepseek_lr(flops: float) -> float:
    return float(0.3118 * flops**-0.125)


def deepseek_batch_tokens(flops: float) -> float:
    return float(0.2920 * flops**0.3271)


def small_scale_lr(shape: ModelShape) -> float:
    return SMALL_LR_TIMES_WIDTH / shape.d_model


def peak_lr(shape: ModelShape, flops: float) -> float:
    """The small-scale rule below 1e14 FLOPs, DeepSeek's from 1e17, log-linear between."""
    small, large = small_scale_lr(shape), deepseek_lr(flops)
    if flops <= SMALL_SCALE_MAX_FLOPS:
        return small
    if flops >= DEEPSEEK_MIN_FLOPS:
        return large
    t = math.log(flops / SMALL_SCALE_MAX_FLOPS) / math.log(
        DEEPSEEK_MIN_FLOPS / SMALL_SCALE_MAX_FLOPS
    )
    return math.exp((1 - t) * math.log(small) + t * math.log(large))


def batch_tokens(tokens: int, flops: float) -> float:
    """DeepSeek's batch, capped so that the run takes at least TARGET_STEPS steps."""
    return min(deepseek_batch_tokens(flops), tokens / TARGET_STEPS)


def min_tokens(context_tokens: int) -> int:
    """The fewest tokens worth a run: MIN_STEPS steps of one sequence."""
    return MIN_STEPS * context_tokens


def warmup_steps(steps: int, warmup_frac: float) -> int:
    if not warmup_frac:
        return 0
    floor = min(MIN_WARMUP_STEPS, 0.1 * steps)
    return max(1, math.ceil(max(warmup_frac * steps, floor)))


def make_plan(config: TrainConfig) -> Plan:
    """Resolve the recipe; the run's token count is rounded to whole batches."""
    shape = config.shape
    target_tokens = (
        config.tokens
        if config.tokens is not None
        else tokens_for_flops(shape, float(config.target_flops or 0))
    )
    budget = flops_6nd(shape, target_tokens)
    wanted = config.batch_tokens or batch_tokens(target_tokens, budget)
    batch_seqs = max(1, round(wanted / shape.context_tokens))
    micro = min(config.micro_batch_seqs or batch_seqs, batch_seqs)
    # Keep every micro-batch the same size so gradient accumulation averages correctly.
    while batch_seqs % micro:
        micro -= 1
    step_tokens = batch_seqs * shape.context_tokens
    steps = max(1, round(target_tokens / step_tokens))
    tokens = steps * step_tokens
    beta2 = config.beta2 or (0.99 if step_tokens < SMALL_BATCH_TOKENS else 0.95)
    return Plan(
        tokens=tokens,
        steps=steps,
        batch_seqs=batch_seqs,
        micro_batch_seqs=micro,
        accum_steps=batch_seqs // micro,
        peak_lr=config.lr or peak_lr(shape, budget),
        beta2=beta2,
        warmup_steps=warmup_steps(steps, config.warmup_frac),
        flops_6nd=flops_6nd(shape, tokens),
    )


def lr_at(step: int, plan: Plan, min_lr_ratio: float) -> float:
    """Linear warmup, then cosine from peak to min_lr_ratio * peak at the last step.

    `step` counts from 0; the last step (plan.steps - 1) gets exactly the floor.
    """
    if step < plan.warmup_steps:
        return plan.peak_lr * (step + 1) / plan.warmup_steps
    decay_steps = plan.steps - 1 - plan.warmup_steps
    progress = 1.0 if decay_steps <= 0 else (step - plan.warmup_steps) / decay_steps
    cosine = 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return plan.peak_lr * (min_lr_ratio + (1 - min_lr_ratio) * cosine)
