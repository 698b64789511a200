"""Inference-aware allocation at a compute budget (Sardana et al. 2024, arXiv 2401.00448).

A model of N params trained on D tokens and then served for D_inf tokens costs 6 N D (training)
+ 2 N D_inf (inference) FLOPs over its life. With D_inf > 0 a FLOP budget C means one of:

- ``"total"`` (the default): C pays for training and inference, 6ND + 2N D_inf = C, and the
  answer is the lowest loss that C buys over the model's life;
- ``"training"``: C pays for training only, 6ND = C, and the answer is the lifetime-cheapest
  model among those trained with C: the point of 6ND = C where a contour of loss touches a
  contour of lifetime cost (with D_inf = 0, the compute-optimal point).

Both answers lie on Sardana et al.'s frontier (least lifetime cost for each loss), which
``allocate.inference_optimum`` walks by loss instead. Neither applies to a ``Frontier``: it has
no loss surface L(N, D).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import brentq, minimize_scalar

from service.scaling.allocate import (
    Constraints,
    EqualLossOptimum,
    Point,
    least_flops_for_loss,
    optimum_at_flops,
)
from service.scaling.errors import (
    InfeasibleConstraintsError,
    InvalidArgumentError,
    UnreachableLossError,
)
from service.scaling.laws import AnyLaw, DataConstrained

FloatArray = NDArray[np.float64]
# Step in log N and log D of the central differences behind the tangency condition.
_LOG_STEP = 1e-4
_GRID = 160


def _losses(law: AnyLaw, N: FloatArray, D: FloatArray, cons: Constraints) -> FloatArray:
    unique = cons.unique_tokens if isinstance(law, DataConstrained) else None
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        out = np.asarray(law.predict(N, D, unique_tokens=unique), dtype=np.float64)
    return np.where((D >= 1.0) & np.isfinite(out), out, np.inf)


def _max_tokens(law: AnyLaw, cons: Constraints) -> float:
    """Training tokens allowed: max_tokens, and unique_tokens where the law cannot repeat data."""
    cap = np.inf if cons.max_tokens is None else cons.max_tokens
    if cons.unique_tokens is not None and not isinstance(law, DataConstrained):
        cap = min(cap, cons.unique_tokens)
    return float(cap)


def _require_inference(cons: Constraints) -> float:
    if cons.inference_tokens <= 0:
        raise InvalidArgumentError(
            name="inference_tokens", reason="inference-aware allocation needs them > 0"
        )
    return cons.inference_tokens


def optimum_at_total_flops(law: AnyLaw, flops: float, cons: Constraints) -> Point:
    """Lowest-loss (N, D) with 6 N D + 2 N D_inf = ``flops`` inside the constraints."""
    d_inf = _require_inference(cons)
    # D >= 1 keeps N below C / (6 + 2 D_inf); D <= cap keeps it above C / (6 cap + 2 D_inf).
    hi = float(np.log(flops / (6.0 + 2.0 * d_inf)))
    hi_bound = ""
    if cons.max_params is not None and np.log(cons.max_params) < hi:
        hi, hi_bound = float(np.log(cons.max_params)), "max_params"
    cap = _max_tokens(law, cons)
    lo, lo_bound = 0.0, ""
    if np.isfinite(cap) and np.log(flops / (6.0 * cap + 2.0 * d_inf)) > lo:
        lo, lo_bound = float(np.log(flops / (6.0 * cap + 2.0 * d_inf))), "max_tokens"
    if lo > hi:
        raise InfeasibleConstraintsError(
            reason=f"{flops:.3g} FLOPs for training and {d_inf:.3g} inference tokens leave no "
            "model size within the limits on parameters and tokens"
        )

    def tokens(x: FloatArray | float) -> FloatArray:
        N = np.exp(np.asarray(x, dtype=np.float64))
        return np.asarray((flops - 2.0 * N * d_inf) / (6.0 * N))

    def f(x: float) -> float:
        return float(_losses(law, np.exp(np.asarray(x)), tokens(x), cons)[()])

    xs = np.linspace(lo, hi, _GRID)
    vals = _losses(law, np.exp(xs), tokens(xs), cons)
    if not np.isfinite(vals).any():
        raise InfeasibleConstraintsError(reason="no model size gives a finite loss")
    i = int(np.argmin(vals))
    x = float(xs[i])
    if 0 < i < xs.size - 1:
        res = minimize_scalar(f, bounds=(xs[i - 1], xs[i + 1]), method="bounded")
        if f(float(res.x)) <= vals[i]:
            x = float(res.x)
    binding: tuple[str, ...] = ()
    if i == xs.size - 1 and hi_bound:
        binding = (hi_bound,)
    elif i == 0 and lo_bound:
        binding = (lo_bound,)
    N = float(np.exp(x))
    D = float(tokens(x))
    return Point(N, D, f(x), binding)


def _tangency(law: AnyLaw, x: FloatArray, flops: float, cons: Constraints) -> FloatArray:
    """Where Sardana's frontier crosses 6ND = ``flops``: zero where the loss contour touches a
    lifetime-cost contour, i.e. dL/dlnN * 6D = dL/dlnD * (6D + 2 D_inf); negative while a
    bigger model is worth its inference cost."""
    N = np.exp(x)
    D = flops / (6.0 * N)
    h = _LOG_STEP
    dn = (_losses(law, N * np.exp(h), D, cons) - _losses(law, N * np.exp(-h), D, cons)) / (2 * h)
    dd = (_losses(law, N, D * np.exp(h), cons) - _losses(law, N, D * np.exp(-h), cons)) / (2 * h)
    weight = 6.0 * D / (6.0 * D + 2.0 * cons.inference_tokens)
    return np.asarray(dn * weight - dd)


def served_optimum_at_training_flops(law: AnyLaw, flops: float, cons: Constraints) -> Point:
    """The lifetime-cheapest (N, D) for its loss among those with 6 N D = ``flops``."""
    _require_inference(cons)
    # Bounds as for the compute-optimal point (6ND = C inside the limits), one step inside so
    # that the differences stay on the curve.
    free = optimum_at_flops(law, flops, replace(cons, max_params=None, max_tokens=None))
    lo, hi = 0.0, float(np.log(flops / 6.0))
    lo_bound = hi_bound = ""
    if cons.max_params is not None and np.log(cons.max_params) < hi:
        hi, hi_bound = float(np.log(cons.max_params)), "max_params"
    cap = _max_tokens(law, cons)
    if np.isfinite(cap) and np.log(flops / (6.0 * cap)) > lo:
        lo, lo_bound = float(np.log(flops / (6.0 * cap))), "max_tokens"
    if lo > hi:
        raise InfeasibleConstraintsError(
            reason=f"at {flops:.3g} FLOPs the token limit needs more than the parameter limit "
            "allows"
        )
    # The answer is no bigger than the compute-optimal model (there the tangency is > 0).
    top = min(hi, float(np.log(free.params)) + _LOG_STEP)
    x, binding = top, ((hi_bound,) if hi_bound and top >= hi else ())
    if top - lo > 4 * _LOG_STEP:
        xs = np.linspace(lo + _LOG_STEP, top - _LOG_STEP, _GRID)
        g = _tangency(law, xs, flops, cons)
        cross = np.flatnonzero((g[:-1] < 0) & (g[1:] >= 0))
        if cross.size:
            k = int(cross[0])
            x = float(
                brentq(
                    lambda v: float(_tangency(law, np.asarray(v), flops, cons)[()]),
                    xs[k],
                    xs[k + 1],
                    xtol=1e-12,
                )
            )
            binding = ()
        elif bool(np.all(g >= 0)):
            x, binding = lo, ((lo_bound,) if lo_bound else ())
    else:
        x, binding = lo, ((lo_bound,) if lo_bound else ())
    N = float(np.exp(x))
    D = flops / (6.0 * N)
    return Point(N, D, float(_losses(law, np.asarray(N), np.asarray(D), cons)[()]), binding)


def equal_loss_optimum(law: AnyLaw, loss: float, cons: Constraints) -> EqualLossOptimum | None:
    """The training-compute-optimal model (least 6ND, inference ignored) that reaches ``loss``
    within the same limits, priced with the same inference tokens; None if none reaches it."""
    plain = replace(cons, inference_tokens=0.0)
    try:
        C = least_flops_for_loss(law, loss, plain)
        p = optimum_at_flops(law, C, plain)
    except (UnreachableLossError, InfeasibleConstraintsError):
        return None
    return EqualLossOptimum(
        params=p.params,
        tokens=p.tokens,
        flops=6.0 * p.params * p.tokens,
        loss=p.loss,
        inference_flops=2.0 * p.params * cons.inference_tokens,
    )
