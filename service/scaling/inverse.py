"""Inverse questions: the compute for which a model size, or an amount of data, is optimal.

For a size N: the budget C with N_opt(C) = N, hence D = C / 6N; for U unique tokens: the budget
with D_opt(C) = U, trained once on them. Chinchilla without constraints inverts eq. 4 in closed
form, C = 6 (N / G)^(1/a) and C = 6 (U G)^(1/b) (Hoffmann et al. 2022: G = 1.345 with the
rounded constants, so N = 1e9 needs C = 2.642e20 FLOPs and D = 4.403e10 tokens); a frontier
inverts its power laws; everything else solves N_opt(C) = N (or D_opt(C) = U) for log C, both
rising with C. The third inverse question, the compute for a target loss, is
``allocate.least_flops_for_loss``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.optimize import brentq

from service.scaling.allocate import Constraints, Point, optimum_at_flops
from service.scaling.errors import InfeasibleConstraintsError
from service.scaling.frontier import Frontier
from service.scaling.laws import Chinchilla, DataConstrained
from service.scaling.result import Source

_LOG_C_RANGE = (np.log(1e6), np.log(1e40))


def _unconstrained(cons: Constraints) -> bool:
    return cons.max_params is None and cons.max_tokens is None and cons.unique_tokens is None


def solve_flops(
    at: Callable[[float], Point], quantity: Callable[[Point], float], target: float, what: str
) -> Point:
    """The point ``at(C)`` whose ``quantity`` (rising with C) equals ``target``."""

    def gap(logc: float) -> float:
        try:
            return float(np.log(quantity(at(float(np.exp(logc))))) - np.log(target))
        except InfeasibleConstraintsError:
            return -np.inf  # too small a budget to meet the limits: below the answer

    lo, hi = _LOG_C_RANGE
    if gap(hi) < 0:
        raise InfeasibleConstraintsError(
            reason=f"no budget up to 1e40 FLOPs makes {target:.3g} {what} compute-optimal within "
            "the limits"
        )
    if gap(lo) >= 0:
        raise InfeasibleConstraintsError(
            reason=f"{target:.3g} {what} is below the compute-optimal choice at 1e6 FLOPs"
        )
    return at(float(np.exp(brentq(gap, lo, hi, xtol=1e-12))))


def _check_params(params: float, cons: Constraints) -> None:
    if cons.max_params is not None and params > cons.max_params * (1 + 1e-12):
        raise InfeasibleConstraintsError(
            reason=f"the model size {params:.3g} is above max_params = {cons.max_params:.3g}"
        )


def _check_tokens(tokens: float, cons: Constraints) -> None:
    for name in ("max_tokens", "unique_tokens"):
        cap = getattr(cons, name)
        if cap is not None and tokens > cap * (1 + 1e-12):
            raise InfeasibleConstraintsError(
                reason=f"the data {tokens:.3g} tokens is above {name} = {cap:.3g}"
            )


def _closed_form(law: Source, cons: Constraints) -> Chinchilla | Frontier | None:
    """The law whose eq. 4 (or power law) gives the answer, where one does."""
    if not _unconstrained(cons):
        return None
    if isinstance(law, DataConstrained):
        return law.base  # without unique_tokens nothing repeats: Chinchilla's optimum
    return law if isinstance(law, Chinchilla | Frontier) else None


def optimum_for_params(law: Source, params: float, cons: Constraints) -> Point:
    """The compute-optimal point (6ND = C inside the limits) whose size is ``params``."""
    _check_params(params, cons)
    closed = _closed_form(law, cons)
    if isinstance(closed, Chinchilla):
        return optimum_at_flops(law, 6.0 * (params / closed.G) ** (1.0 / closed.a), cons)
    if isinstance(closed, Frontier):
        return optimum_at_flops(law, float((params / closed.k_N) ** (1.0 / closed.a)), cons)
    return solve_flops(
        lambda C: optimum_at_flops(law, C, cons), lambda p: p.params, params, "params"
    )


def optimum_for_tokens(law: Source, tokens: float, cons: Constraints) -> Point:
    """The compute-optimal point (6ND = C inside the limits) trained on ``tokens`` tokens."""
    _check_tokens(tokens, cons)
    closed = _closed_form(law, cons)
    if isinstance(closed, Chinchilla):
        return optimum_at_flops(law, 6.0 * (tokens * closed.G) ** (1.0 / closed.b), cons)
    if isinstance(closed, Frontier):
        # D = C / (6 k_N C^a), as optimum_at_flops takes N from the frontier and D = C / 6N.
        C = float((6.0 * closed.k_N * tokens) ** (1.0 / (1.0 - closed.a)))
        return optimum_at_flops(law, C, cons)
    return solve_flops(
        lambda C: optimum_at_flops(law, C, cons), lambda p: p.tokens, tokens, "tokens"
    )
