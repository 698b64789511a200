"""Runs with several points: one trunk of N parameters, cooldown branches at D1 < ... < Dk.

Compute (the trainer's accounting, ``trained_flops_6nd``): the trunk trains to the last branch's
cooldown start, (1 - f) Dk, and every branch cools down over its last f Di tokens, so the run
trains Dk + f (D1 + ... + D(k-1)) tokens: C = 6 N (Dk + f sum_{i<k} Di). Each point's own FLOPs
are those of a run of Di tokens, 6 N Di (its share of the trunk plus its cooldown); summing the
points would count the trunk once per branch.

Noise: the points of one trunk share its seed, data order and trunk, so their log-loss errors
are correlated. The model: eps_i = t + e_i, a trunk component t ~ Normal(0, rho sigma^2) shared
by every branch and an own component e_i ~ Normal(0, (1 - rho) sigma^2); each point alone has
log-noise sigma, two points of one trunk correlation rho. The planner scores a run's points
with this covariance (``point_covariance``), never as k independent runs: k points pin the
level they share only as well as k / (1 + (k - 1) rho) independent runs would, while their
differences (the slope in D at one N) are sharper than independent runs', as paired
measurements are. The simulated executor draws its losses from the same model. rho = 0.5 is
an assumption, not a measurement: seeds move a whole trunk, a cooldown and its evaluation
move one point.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from service.scaling.laws import AnyLaw

FloatArray = NDArray[np.float64]

# The trainer's default cooldown share (Hägele et al. 2024) and the assumed trunk correlation.
COOLDOWN_FRACTION = 0.2
TRUNK_CORRELATION = 0.5
# Branches of a planned run: each a factor BRANCH_RATIO fewer tokens than the next.
BRANCH_RATIO = 2.0


def trained_tokens(branch_tokens: Sequence[float], cooldown_fraction: float) -> float:
    """Tokens a run with these branches (ascending) trains: Dk + f sum_{i<k} Di."""
    tokens = [float(d) for d in branch_tokens]
    return tokens[-1] + cooldown_fraction * sum(tokens[:-1])


def trained_flops(params: float, branch_tokens: Sequence[float], cooldown_fraction: float) -> float:
    """6 N (Dk + f sum_{i<k} Di): what a run with these branches costs (one branch: 6 N D)."""
    return 6.0 * params * trained_tokens(branch_tokens, cooldown_fraction)


def branch_ladder(
    tokens: float, k: int, min_tokens: float, ratio: float = BRANCH_RATIO
) -> FloatArray:
    """Up to ``k`` branch token counts ending at ``tokens``, each ``ratio`` x fewer than the
    next, none under ``min_tokens`` (ascending)."""
    ladder = tokens / ratio ** np.arange(k, dtype=np.float64)[::-1]
    return np.asarray(ladder[ladder >= min_tokens], dtype=np.float64)


def point_covariance(k: int, sigma: float, trunk_correlation: float) -> FloatArray:
    """Covariance of the log-loss errors of one trunk's k points: sigma^2 ((1 - rho) I + rho)."""
    rho = trunk_correlation
    return np.asarray(sigma**2 * ((1.0 - rho) * np.eye(k) + rho * np.ones((k, k))))


def simulate_trunk_losses(
    law: AnyLaw,
    params: float,
    branch_tokens: Sequence[float],
    noise: float,
    trunk_correlation: float,
    rng: np.random.Generator,
) -> FloatArray:
    """The law's loss at each branch times exp(eps), eps from ``point_covariance``: a shared
    trunk draw plus an own draw per branch."""
    tokens = np.asarray(branch_tokens, dtype=np.float64)
    clean = np.asarray(law.predict(np.full_like(tokens, params), tokens), dtype=np.float64)
    if noise <= 0:
        return clean
    shared = rng.normal(0.0, noise * np.sqrt(trunk_correlation))
    own = rng.normal(0.0, noise * np.sqrt(1.0 - trunk_correlation), tokens.shape)
    return np.asarray(clean * np.exp(shared + own))
