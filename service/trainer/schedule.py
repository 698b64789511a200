"""Warmup-stable-decay (WSD): one constant-lr trunk, a cooldown branch per point.

Hägele et al. (2024, arXiv 2405.18392): after warmup, hold the peak learning rate; a cooldown
over the last ~20% of a run's steps, with the 1-sqrt shape, reaches the final loss of a cosine
schedule of that length. So one trunk gives a point at each of several token counts D: the
branch for D takes the trunk's checkpoint at (1 - f) D tokens and cools down over the last
f D tokens. Each point's compute is that of a run of D tokens, 6 N D (N = non-embedding + head
params = total with the tied head counted once): (1 - f) D of trunk share plus f D of cooldown.
The trunk continues from its checkpoint as if no branch had been taken.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from service.trainer.config import TrainConfig
from service.trainer.errors import ConfigError
from service.trainer.recipe import Plan


@dataclass(frozen=True)
class Branch:
    """A cooldown from the trunk's checkpoint after `start_step` steps to the point after
    `end_step` steps (the point's tokens are end_step * the batch's tokens)."""

    start_step: int
    end_step: int

    @property
    def cooldown_steps(self) -> int:
        return self.end_step - self.start_step

    @property
    def cooldown_fraction(self) -> float:
        """The fraction actually cooled down, after rounding to whole steps."""
        return self.cooldown_steps / self.end_step


def make_branches(config: TrainConfig, plan: Plan) -> tuple[Branch, ...]:
    """The branches of a wsd run, shortest first; token counts round to whole batches."""
    step_tokens = plan.batch_tokens
    wanted = config.branch_tokens or (plan.tokens,)
    branches: list[Branch] = []
    for tokens in wanted:
        end = max(1, round(tokens / step_tokens))
        if end > plan.steps:
            raise ConfigError(f"branch at {tokens} tokens is past the horizon of {plan.tokens}")
        start = end - max(1, round(config.cooldown_fraction * end))
        if start < plan.warmup_steps:
            raise ConfigError(
                f"branch at {tokens} tokens would start its cooldown at step {start}, "
                f"before the warmup's {plan.warmup_steps} steps end"
            )
        if branches and end == branches[-1].end_step:
            raise ConfigError(f"branch_tokens round to the same step ({end} of {step_tokens})")
        branches.append(Branch(start, end))
    return tuple(branches)


def wsd_lr_at(step: int, plan: Plan, min_lr_ratio: float, branch: Branch | None) -> float:
    """Linear warmup (as the cosine schedule's), then the peak; inside `branch`'s cooldown,
    1-sqrt from the peak down to min_lr_ratio * peak at the branch's last step.

    `step` counts from 0; the trunk is `branch=None`.
    """
    if step < plan.warmup_steps:
        return plan.peak_lr * (step + 1) / plan.warmup_steps
    if branch is None or step < branch.start_step:
        return plan.peak_lr
    progress = min(1.0, (step - branch.start_step + 1) / branch.cooldown_steps)
    return plan.peak_lr * (min_lr_ratio + (1 - min_lr_ratio) * (1 - math.sqrt(progress)))
