"""Per-scale recipe: batch, learning rate, beta2, warmup and the cosine schedule.

DeepSeek LLM (2024) hyper-parameter laws, with C the run's 6ND FLOPs:
lr = 0.3118 C^-0.125, batch = 0.2920 C^0.3271 tokens. Porian et al. (2024): beta2 0.99 at
small batches, warmup short, cosine decay ending at the run's last token.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from service.trainer.config import TrainConfig
from service.trainer.counts import flops_6nd, tokens_for_flops

SMALL_BATCH_TOKENS = 262_144


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


def make_plan(config: TrainConfig) -> Plan:
    """Resolve the recipe; the run's token count is rounded to whole batches."""
    shape = config.shape
    target_tokens = (
        config.tokens
        if config.tokens is not None
        else tokens_for_flops(shape, float(config.target_flops or 0))
    )
    budget = flops_6nd(shape, target_tokens)
    batch_tokens = config.batch_tokens or deepseek_batch_tokens(budget)
    batch_seqs = max(1, round(batch_tokens / shape.context_tokens))
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
        peak_lr=config.lr or deepseek_lr(budget),
        beta2=beta2,
        warmup_steps=max(1, math.ceil(config.warmup_frac * steps)) if config.warmup_frac else 0,
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
