"""Chinchilla Approach 2: IsoFLOP profiles.

Per budget, a parabola of loss vs log N; its vertex is N_opt(C) with a delta-method standard
error. Then N_opt = k_N C^a and D_opt = k_D C^b by weighted least squares (D_opt = C / 6 N_opt).
A vertex outside the sampled sizes, or sizes lopsided around it, biases the estimate
(Hoffmann et al. Sec. 3.2): both are reported as warnings, never silently corrected.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from service.scaling.errors import DegenerateDataError, InsufficientDataError
from service.scaling.frontier import Frontier, frontier_from_points
from service.scaling.runs import RunArrays, budget_labels

FloatArray = NDArray[np.float64]

# A vertex whose position within the sampled log-N range is outside this band is "lopsided".
SYMMETRY_BAND = (0.25, 0.75)
# A vertex further than half the sampled range beyond an edge is not a measured minimum at all.
FAR_OUTSIDE = (-0.5, 1.5)


@dataclass(frozen=True)
class BudgetMinimum:
    """The vertex of one IsoFLOP parabola."""

    flops: float
    n_runs: int
    params_opt: float
    log_params_se: float | None  # None: fewer than 6 points, no noise estimate
    loss_opt: float
    position: float  # vertex position in the sampled log-N range: 0 = smallest, 1 = largest

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BudgetMinimum:
        return cls(
            flops=float(data["flops"]),
            n_runs=int(data["n_runs"]),
            params_opt=float(data["params_opt"]),
            log_params_se=None if data["log_params_se"] is None else float(data["log_params_se"]),
            loss_opt=float(data["loss_opt"]),
            position=float(data["position"]),
        )


@dataclass(frozen=True)
class IsoflopFit:
    frontier: Frontier
    budgets: tuple[BudgetMinimum, ...]
    warnings: tuple[str, ...]
    rmse_log_loss: float


def parabola_vertex(
    log_n: FloatArray, loss: FloatArray
) -> tuple[float, float, float, float] | None:
    """(x*, se(x*), loss at x*, curvature) of loss = c2 x^2 + c1 x + c0; None if it cannot tell."""
    if np.unique(log_n).size < 3:
        return None
    x0 = float(log_n.mean())
    x = log_n - x0
    # numpy scales the covariance by the residual variance only with > 5 points.
    if log_n.size > 5:
        coef, cov = np.polyfit(x, loss, 2, cov=True)
    else:
        coef, cov = np.polyfit(x, loss, 2), np.full((3, 3), np.nan)
    c2, c1, c0 = (float(c) for c in coef)
    if c2 <= 0:
        return None
    xs = -c1 / (2.0 * c2)
    grad = np.array([c1 / (2.0 * c2**2), -1.0 / (2.0 * c2), 0.0])
    var = float(grad @ cov @ grad)
    loss_opt = c0 - c1 * c1 / (4.0 * c2)
    if loss_opt <= 0:
        return None
    se = float(np.sqrt(var)) if np.isfinite(var) and var >= 0 else float("nan")
    return xs + x0, se, loss_opt, c2


def fit_isoflop(runs: RunArrays, *, rel_tol: float = 0.1) -> IsoflopFit:
    labels = budget_labels(runs, rel_tol=rel_tol)
    n_groups = int(labels.max()) + 1 if labels.size else 0
    if n_groups < 2:
        raise DegenerateDataError(
            target="an IsoFLOP frontier", reason=f"{n_groups} compute budget(s); need at least 2"
        )
    minima: list[BudgetMinimum] = []
    warnings: list[str] = []
    resid: list[FloatArray] = []
    for g in range(n_groups):
        idx = np.flatnonzero(labels == g)
        C = (
            float(runs.budget[idx][0])
            if runs.budget is not None
            else float(np.exp(np.log(runs.flops[idx]).mean()))
        )
        log_n = np.log(runs.params[idx])
        v = parabola_vertex(log_n, runs.loss[idx])
        if v is None:
            warnings.append(
                f"budget {C:.3g} FLOPs skipped: {idx.size} runs, "
                f"{np.unique(log_n).size} sizes, no upward parabola"
            )
            continue
        xs, se, loss_opt, _ = v
        lo, hi = float(log_n.min()), float(log_n.max())
        pos = (xs - lo) / (hi - lo)
        if not FAR_OUTSIDE[0] <= pos <= FAR_OUTSIDE[1]:
            warnings.append(
                f"budget {C:.3g} FLOPs skipped: minimum at N = {np.exp(xs):.3g} is far outside "
                f"the sampled sizes [{np.exp(lo):.3g}, {np.exp(hi):.3g}]"
            )
            continue
        if not 0.0 <= pos <= 1.0:
            warnings.append(
                f"budget {C:.3g} FLOPs: minimum at N = {np.exp(xs):.3g} is outside the sampled "
                f"sizes [{np.exp(lo):.3g}, {np.exp(hi):.3g}] (extrapolated)"
            )
        elif not SYMMETRY_BAND[0] <= pos <= SYMMETRY_BAND[1]:
            warnings.append(
                f"budget {C:.3g} FLOPs: sizes not symmetric around the minimum "
                f"(at {pos:.0%} of the sampled log-N range); the estimate may be biased"
            )
        coef = np.polyfit(log_n - xs, runs.loss[idx], 2)
        resid.append(np.log(np.polyval(coef, log_n - xs)) - np.log(runs.loss[idx]))
        se_or_none = se if np.isfinite(se) else None
        minima.append(BudgetMinimum(C, int(idx.size), float(np.exp(xs)), se_or_none, loss_opt, pos))
    if len(minima) < 2:
        raise InsufficientDataError(
            needed=2,
            what="budgets with an upward parabola",
            target="an IsoFLOP frontier",
            got=len(minima),
        )
    C_arr = np.array([m.flops for m in minima])
    N_arr = np.array([m.params_opt for m in minima])
    L_arr = np.array([m.loss_opt for m in minima])
    se_arr = np.array([np.nan if m.log_params_se is None else m.log_params_se for m in minima])
    sigma = se_arr if np.all(np.isfinite(se_arr)) and np.all(se_arr > 0) else None
    frontier = frontier_from_points(C_arr, N_arr, L_arr, sigma_log_n=sigma)
    r = np.concatenate(resid)
    return IsoflopFit(
        frontier=frontier,
        budgets=tuple(minima),
        warnings=tuple(warnings),
        rmse_log_loss=float(np.sqrt(np.mean(r * r))),
    )
