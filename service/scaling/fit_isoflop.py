"""Chinchilla Approach 2: IsoFLOP profiles.

Per budget, a parabola of loss vs log N; its vertex is N_opt(C) with a delta-method standard
error. Then N_opt = k_N C^a and D_opt = k_D C^b by weighted least squares (D_opt = C / 6 N_opt).
A vertex outside the sampled sizes, or sizes lopsided around it, biases the estimate
(Hoffmann et al. Sec. 3.2): both are reported as warnings, never silently corrected. Budgets
are the runs' nominal budgets when they carry one, else FLOPs clustered with a bounded spread
(``runs.budget_labels``); every budget used or dropped, and why, is in the result.

Noise is not a law: data whose budget minima do not fall with compute, whose per-budget
parabolas explain no more than a constant loss would, or whose allocation exponent a leaves
(0, 1) are refused with ``NoScalingLawError``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.stats import f as f_dist

from service.scaling.errors import DegenerateDataError, InsufficientDataError, NoScalingLawError
from service.scaling.frontier import MIN_POINTS_FOR_E, Frontier, frontier_from_points
from service.scaling.runs import RunArrays, budget_labels, grouping_of

FloatArray = NDArray[np.float64]

# A vertex whose position within the sampled log-N range is outside this band is "lopsided".
SYMMETRY_BAND = (0.25, 0.75)
# A vertex further than half the sampled range beyond an edge is not a measured minimum at all.
FAR_OUTSIDE = (-0.5, 1.5)
# The parabolas must beat a constant loss at this significance (F-test) to be read as a law.
NOISE_P_VALUE = 1e-3


@dataclass(frozen=True)
class BudgetMinimum:
    """The vertex of one IsoFLOP parabola."""

    flops: float
    n_runs: int
    params_opt: float
    log_params_se: float | None  # None: fewer than 6 points, no noise estimate
    loss_opt: float
    position: float  # vertex position in the sampled log-N range: 0 = smallest, 1 = largest
    flops_min: float | None = None  # the runs' FLOPs range (None in fits stored before it)
    flops_max: float | None = None

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
            flops_min=_opt(data.get("flops_min")),
            flops_max=_opt(data.get("flops_max")),
        )


def _opt(v: Any) -> float | None:
    return None if v is None else float(v)


@dataclass(frozen=True)
class DroppedBudget:
    """A budget group the IsoFLOP fit could not use, and why."""

    flops: float
    n_runs: int
    flops_min: float
    flops_max: float
    reason: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DroppedBudget:
        return cls(
            flops=float(data["flops"]),
            n_runs=int(data["n_runs"]),
            flops_min=float(data["flops_min"]),
            flops_max=float(data["flops_max"]),
            reason=str(data["reason"]),
        )


@dataclass(frozen=True)
class IsoflopFit:
    frontier: Frontier
    budgets: tuple[BudgetMinimum, ...]
    warnings: tuple[str, ...]
    rmse_log_loss: float
    dropped: tuple[DroppedBudget, ...] = ()
    grouping: str = ""
    residual_dof: int = 0  # of the parabolas: runs used minus 3 per budget
    fitted_log_loss: FloatArray | None = None  # per run (NaN in dropped budgets)
    labels: NDArray[np.int64] | None = None


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


def fit_isoflop(
    runs: RunArrays,
    *,
    rel_tol: float = 0.1,
    labels: NDArray[np.int64] | None = None,
    refuse_noise: bool = True,
) -> IsoflopFit:
    """Fit per-budget parabolas and the frontier; ``labels`` (one budget label per row) overrides
    the grouping, as bootstrap refits of the same design do. ``refuse_noise=False`` keeps a fit
    that looks like noise (a outside (0, 1), minima not falling): bootstrap refits must, or
    their intervals would be cut off at exactly the values that should flag them."""
    if labels is None:
        labels = budget_labels(runs, rel_tol=rel_tol)
    n_groups = int(labels.max()) + 1 if labels.size else 0
    if n_groups < 2:
        raise DegenerateDataError(
            target="an IsoFLOP frontier", reason=f"{n_groups} compute budget(s); need at least 2"
        )
    minima: list[BudgetMinimum] = []
    dropped: list[DroppedBudget] = []
    warnings: list[str] = []
    fitted = np.full(len(runs), np.nan)
    for g in range(n_groups):
        idx = np.flatnonzero(labels == g)
        if idx.size == 0:
            continue
        C = (
            float(runs.budget[idx][0])
            if runs.budget is not None
            else float(np.exp(np.log(runs.flops[idx]).mean()))
        )
        c_lo, c_hi = float(runs.flops[idx].min()), float(runs.flops[idx].max())
        log_n = np.log(runs.params[idx])
        v = parabola_vertex(log_n, runs.loss[idx])
        if v is None:
            why = f"{idx.size} runs, {np.unique(log_n).size} sizes, no upward parabola"
            dropped.append(DroppedBudget(C, int(idx.size), c_lo, c_hi, why))
            continue
        xs, se, loss_opt, _ = v
        lo, hi = float(log_n.min()), float(log_n.max())
        pos = (xs - lo) / (hi - lo)
        if not FAR_OUTSIDE[0] <= pos <= FAR_OUTSIDE[1]:
            why = (
                f"minimum at N = {np.exp(xs):.3g} is far outside the sampled sizes "
                f"[{np.exp(lo):.3g}, {np.exp(hi):.3g}]"
            )
            dropped.append(DroppedBudget(C, int(idx.size), c_lo, c_hi, why))
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
        fitted[idx] = np.log(np.maximum(np.polyval(coef, log_n - xs), 1e-300))
        se_or_none = se if np.isfinite(se) else None
        minima.append(
            BudgetMinimum(
                C, int(idx.size), float(np.exp(xs)), se_or_none, loss_opt, pos, c_lo, c_hi
            )
        )
    if len(minima) < 2:
        raise InsufficientDataError(
            needed=2,
            what="budgets with an upward parabola",
            target="an IsoFLOP frontier",
            got=len(minima),
        )
    used = np.isfinite(fitted)
    r = fitted[used] - np.log(runs.loss[used])
    dof = int(used.sum()) - 3 * len(minima)
    if refuse_noise:
        _check_law(runs.loss[used], r, dof, minima)
    C_arr = np.array([m.flops for m in minima])
    N_arr = np.array([m.params_opt for m in minima])
    L_arr = np.array([m.loss_opt for m in minima])
    se_arr = np.array([np.nan if m.log_params_se is None else m.log_params_se for m in minima])
    sigma = se_arr if np.all(np.isfinite(se_arr)) and np.all(se_arr > 0) else None
    frontier = frontier_from_points(C_arr, N_arr, L_arr, sigma_log_n=sigma)
    if refuse_noise and not 0.0 < frontier.a < 1.0:
        raise NoScalingLawError(
            target="an IsoFLOP frontier",
            reason=f"the fitted allocation exponent a = {frontier.a:.3g} (N_opt ~ C^a) is "
            "outside (0, 1), so D_opt ~ C^(1-a) would not grow with compute",
        )
    if not frontier.E_fitted:
        why = (
            "its fit ran to E = 0"
            if len(minima) >= MIN_POINTS_FOR_E
            else f"{len(minima)} budgets, {MIN_POINTS_FOR_E} needed to fit it"
        )
        warnings.append(
            f"the loss line E + k_L C^-gamma has no irreducible term ({why}): this fit gives "
            "no target-loss answers"
        )
    if dof <= 0:
        warnings.append(
            "no residual degrees of freedom: every parabola passes exactly through its runs "
            "(3 sizes per budget), so the fit cannot measure the noise; add sizes per budget"
        )
    below = int(np.sum(runs.loss[used] < frontier.E)) if frontier.E_fitted else 0
    if below:
        warnings.append(
            f"{below} run(s) have a loss below the frontier's fitted irreducible loss "
            f"E = {frontier.E:.4g}: E is not pinned down by these budgets"
        )
    return IsoflopFit(
        frontier=frontier,
        budgets=tuple(minima),
        warnings=tuple(warnings),
        rmse_log_loss=float(np.sqrt(np.mean(r * r))),
        dropped=tuple(dropped),
        grouping=grouping_of(runs, rel_tol=rel_tol),
        residual_dof=dof,
        fitted_log_loss=fitted,
        labels=labels,
    )


def _check_law(
    loss: FloatArray,
    resid: FloatArray,
    dof: int,
    minima: list[BudgetMinimum],
) -> None:
    """Refuse noise: minima that do not fall with compute, or parabolas no better than a
    constant (F-test of the per-budget parabolas against one loss for all runs, in log loss)."""
    C = np.array([m.flops for m in minima])
    L = np.array([m.loss_opt for m in minima])
    slope = float(np.polyfit(np.log(C), np.log(L), 1)[0])
    if slope >= 0:
        raise NoScalingLawError(
            target="an IsoFLOP frontier",
            reason=f"the budgets' minimum losses do not fall with compute (log-log slope "
            f"{slope:.3g} over {C.min():.3g}..{C.max():.3g} FLOPs)",
        )
    if dof <= 0:
        return
    y = np.log(loss)
    ss0 = float(np.sum((y - y.mean()) ** 2))
    ss1 = float(resid @ resid)
    k = 3 * len(minima)
    if ss0 <= 0:
        raise NoScalingLawError(target="an IsoFLOP frontier", reason="every run has one loss")
    F = ((ss0 - ss1) / (k - 1)) / max(ss1 / dof, 1e-300)
    p = float(f_dist.sf(F, k - 1, dof))
    if p > NOISE_P_VALUE:
        raise NoScalingLawError(
            target="an IsoFLOP frontier",
            reason=f"per-budget parabolas explain loss no better than noise around one constant "
            f"(F-test p = {p:.2g}; {1 - ss1 / ss0:.0%} of the variance of log loss)",
        )


def residual_resample(
    runs: RunArrays, fit: IsoflopFit, rng: np.random.Generator, n: int
) -> list[RunArrays]:
    """``n`` copies of the runs with the same design (budgets, sizes, tokens) and resampled noise.

    Each run's loss is its budget's fitted parabola times exp(r), r drawn from the pooled log
    residuals of all used budgets, inflated by sqrt(runs / dof) for the 3 fitted coefficients
    per budget. Resampling runs instead (with replacement, within budgets) loses a third of the
    distinct sizes of each parabola and gave intervals many times too wide, or off-centre.
    Runs in dropped budgets keep their loss.
    """
    assert fit.fitted_log_loss is not None
    used = np.flatnonzero(np.isfinite(fit.fitted_log_loss))
    pred = fit.fitted_log_loss[used]
    r = np.log(runs.loss[used]) - pred
    r = (r - r.mean()) * np.sqrt(used.size / max(fit.residual_dof, 1))
    out = []
    for _ in range(n):
        loss = runs.loss.copy()
        loss[used] = np.exp(pred + rng.choice(r, size=used.size))
        out.append(
            RunArrays(
                runs.params,
                runs.tokens,
                loss,
                flops=runs.flops,
                unique_tokens=runs.unique_tokens,
                budget=runs.budget,
            )
        )
    return out
