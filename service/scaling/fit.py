"""One entry point for fitting: validate, fit, diagnose, bootstrap."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np
from numpy.typing import NDArray
from scipy.stats import f as f_dist

from service.scaling.errors import (
    DegenerateDataError,
    ExponentAtBoundError,
    InsufficientDataError,
    InvalidArgumentError,
    NoScalingLawError,
    ScalingError,
    UnknownNameError,
)
from service.scaling.fit_envelope import fit_envelope
from service.scaling.fit_isoflop import (
    NOISE_P_VALUE,
    BudgetMinimum,
    DroppedBudget,
    IsoflopFit,
    fit_isoflop,
    residual_resample,
)
from service.scaling.fit_other import DC_BOUNDS, KAPLAN_BOUNDS, fit_data_constrained, fit_kaplan
from service.scaling.fit_parametric import EXPONENT_BOUNDS, bootstrap_refits, global_fit
from service.scaling.frontier import Frontier
from service.scaling.laws import LAWS, AnyLaw, Chinchilla, DataConstrained, Kaplan
from service.scaling.result import FitResult
from service.scaling.runs import RunArrays, budget_labels, resample_groups

FloatArray = NDArray[np.float64]
Progress = Callable[[float], None]

METHODS = ("parametric", "isoflop", "envelope")
OUTLIER_Z = 4.0
# A loss this far from the median in log (a factor 100) is named when a fit is refused.
FAR_LOG_LOSS = float(np.log(100.0))
# An exponent closer than this to its bound is "at the bound".
BOUND_TOL = 1e-3
# A term contributing less than this share of the loss of every run is not identified.
VANISHING_TERM = 1e-4


def _one_budget(runs: RunArrays, budget_tol: float) -> bool:
    """All runs at one compute budget: FLOPs within `budget_tol` of each other end to end.

    Not `budget_labels(...).max() == 0`: grouping links neighbours, so runs spread densely over
    decades of compute (no gap over the tolerance) chained into one "budget".
    """
    if runs.budget is not None:
        return bool(np.unique(runs.budget).size < 2)
    return bool(np.log(runs.flops.max() / runs.flops.min()) <= np.log1p(budget_tol))


def _check_parametric(runs: RunArrays, law: str, budget_tol: float) -> None:
    n_params = len(LAWS[law].param_names)
    if len(runs) <= n_params:
        raise InsufficientDataError(
            needed=n_params + 1, what="runs", target=f"the {law} law", got=len(runs)
        )
    if np.unique(runs.params).size < 2:
        raise DegenerateDataError(target=f"the {law} law", reason="all runs have one model size")
    if np.unique(runs.tokens).size < 2:
        raise DegenerateDataError(target=f"the {law} law", reason="all runs have one token count")
    if _one_budget(runs, budget_tol):
        raise DegenerateDataError(
            target=f"the {law} law",
            reason="all runs share one compute budget, so N and D vary together (D = C/6N)",
        )
    if law == "data_constrained":
        if runs.unique_tokens is None:
            raise InsufficientDataError(
                needed=1, what="unique_tokens column", target="the data_constrained law", got=0
            )
        if not np.any(runs.tokens > runs.unique_tokens * (1 + 1e-9)):
            raise DegenerateDataError(
                target="R_D* and R_N*", reason="no run repeats data (tokens <= unique_tokens)"
            )


def _check_bounds(law: AnyLaw, runs: RunArrays, rmse: float) -> None:
    """An exponent at its bound, or a term that stays below the scatter of the data (or a
    negligible share of the loss) on every run, is not identified."""
    if isinstance(law, Kaplan):
        names: tuple[str, ...] = ("alpha_N", "alpha_D")
        lo, hi = (float(b) for b in KAPLAN_BOUNDS[2])  # type: ignore[arg-type]
    else:
        names = ("alpha", "beta")
        lo, hi = EXPONENT_BOUNDS
    for name in names:
        v = float(getattr(law, name))
        if v < lo + BOUND_TOL or v > hi - BOUND_TOL:
            raise ExponentAtBoundError(name=name, value=v, bound=lo if v < 1 else hi)
    if isinstance(law, Chinchilla | DataConstrained):
        terms = {
            "alpha": law.A * runs.params**-law.alpha,
            "beta": law.B * runs.tokens**-law.beta,
        }
        for name, term in terms.items():
            if float(np.max(term / runs.loss)) < max(VANISHING_TERM, 2.0 * rmse):
                raise ExponentAtBoundError(
                    name=name,
                    value=float(getattr(law, name)),
                    bound="none: its term vanishes (loss does not fall with "
                    + ("params" if name == "alpha" else "tokens")
                    + " in these data)",
                )


def check_loss_varies(runs: RunArrays, target: str) -> None:
    """Refuse runs whose loss does not vary with N and D beyond the noise.

    An F-test of a smooth surface (log loss quadratic in log N and log D, 6 coefficients)
    against one constant loss: independent of the law, so a law that cannot follow the data
    (an exponent at its bound) is still told apart from noise. Fewer than 7 runs: no test.
    """
    x, z, y = np.log(runs.params), np.log(runs.tokens), np.log(runs.loss)
    X = np.stack([np.ones_like(x), x, z, x * x, z * z, x * z], axis=1)
    k = int(np.linalg.matrix_rank(X))  # a design may make columns dependent
    dof = len(runs) - k
    ss0 = float(np.sum((y - y.mean()) ** 2))
    if ss0 <= 0.0:
        raise NoScalingLawError(target=target, reason="every run has the same loss")
    if dof <= 0 or k < 2:
        return
    coef = np.linalg.lstsq(X, y, rcond=None)[0]
    r = y - X @ coef
    ss1 = float(r @ r)
    F = ((ss0 - ss1) / (k - 1)) / max(ss1 / dof, 1e-300)
    p = float(f_dist.sf(F, k - 1, dof))
    if p > NOISE_P_VALUE:
        reason = (
            f"loss does not vary with N and D beyond the noise: a smooth surface in "
            f"log N and log D explains {1.0 - ss1 / ss0:.0%} of the variance of log loss, no "
            f"more than noise would (F-test p = {p:.2g} over {len(runs)} runs)"
        )
        # One absurd loss (a unit slip, 1e-300) can swamp the variance: name it.
        far = np.abs(y - np.median(y))
        worst = int(np.argmax(far))
        if far[worst] > FAR_LOG_LOSS:
            reason += (
                f"; a loss far from the others ({float(runs.loss[worst]):.3g} against a median "
                f"{float(np.median(runs.loss)):.3g}) can do that: exclude it"
            )
        raise NoScalingLawError(target=target, reason=reason)


def _parametric_once(
    runs: RunArrays, law: str, delta: float, *, theta0: FloatArray | None = None
) -> tuple[AnyLaw, float, int, bool, FloatArray]:
    """(law, objective, iterations, converged, theta) of one parametric fit."""
    log_n, log_d, log_l = np.log(runs.params), np.log(runs.tokens), np.log(runs.loss)
    if law == "kaplan":
        k, res = fit_kaplan(log_n, log_d, log_l, delta, theta0)
        return k, res.objective, res.iterations, res.converged, res.x
    pol = global_fit(log_n, log_d, runs.loss, delta)
    a, b, e, alpha, beta = (float(v) for v in pol.theta[0])
    c = Chinchilla(E=np.exp(e), A=np.exp(a), B=np.exp(b), alpha=alpha, beta=beta)
    if law == "chinchilla":
        return c, float(pol.objective[0]), pol.iterations, bool(pol.converged[0]), pol.theta[0]
    assert runs.unique_tokens is not None
    one_epoch = runs.tokens <= runs.unique_tokens * (1 + 1e-9)
    if np.unique(runs.params[one_epoch]).size >= 2 and one_epoch.sum() > 5:
        sub = runs.take(np.flatnonzero(one_epoch))
        pol = global_fit(np.log(sub.params), np.log(sub.tokens), sub.loss, delta)
        a, b, e, alpha, beta = (float(v) for v in pol.theta[0])
        c = Chinchilla(E=np.exp(e), A=np.exp(a), B=np.exp(b), alpha=alpha, beta=beta)
    dc, res = fit_data_constrained(
        runs.params, runs.tokens, runs.unique_tokens, log_l, delta, c, theta0=theta0
    )
    return dc, res.objective, res.iterations, res.converged, res.x


def _log_residuals(law: AnyLaw, runs: RunArrays) -> FloatArray:
    """log(predicted / observed loss) of every run."""
    return np.log(law.predict(runs.params, runs.tokens, unique_tokens=runs.unique_tokens)) - np.log(
        runs.loss
    )


def _outliers(resid: FloatArray) -> tuple[int, ...]:
    med = np.median(resid)
    mad = 1.4826 * np.median(np.abs(resid - med))
    if mad <= 0:
        return ()
    return tuple(int(i) for i in np.flatnonzero(np.abs(resid - med) / mad > OUTLIER_Z))


def _check_options(*, huber_delta: float, bootstrap: int, budget_tol: float) -> None:
    for name, value in (("huber_delta", huber_delta), ("budget_tol", budget_tol)):
        if not (np.isfinite(value) and value > 0):
            raise InvalidArgumentError(name=name, reason=f"{value!r} is not finite and positive")
    if isinstance(bootstrap, bool) or not isinstance(bootstrap, int | np.integer) or bootstrap < 0:
        raise InvalidArgumentError(
            name="bootstrap", reason=f"{bootstrap!r} is not a whole number >= 0"
        )


def fit(
    runs: RunArrays,
    *,
    law: str = "chinchilla",
    method: str = "parametric",
    huber_delta: float = 1e-3,
    bootstrap: int = 0,
    seed: int = 0,
    progress: Progress | None = None,
    budget_tol: float = 0.1,
    holdout: bool = True,
) -> FitResult:
    """Fit ``law`` to ``runs`` by ``method``.

    method: "parametric" (Approach 3; law chinchilla, kaplan or data_constrained), "isoflop"
    (Approach 2) or "envelope" (Approach 1; rows are points: final losses, cooldown branches or
    loss-curve points with run_id); the last two
    give a ``Frontier`` (power laws in C, loss E + k_L C^-gamma) and ignore ``law``. bootstrap:
    number of resamples (seeded by ``seed``): of runs (parametric), of loss curves (envelope),
    of the noise on the fixed design of budgets and sizes (isoflop); rows sharing a
    ``runs.groups`` label (points of one trunk) are resampled together, as whole groups;
    ``progress`` is called with the fraction done. budget_tol: relative FLOP spread of a budget
    when runs carry no nominal budget. Bad options raise InvalidArgumentError (a ValueError);
    data that cannot be fitted raise DegenerateDataError, InsufficientDataError or
    ExponentAtBoundError, and data in which loss does not fall with scale beyond the noise
    NoScalingLawError.
    """
    _check_options(huber_delta=huber_delta, bootstrap=bootstrap, budget_tol=budget_tol)
    if method not in METHODS:
        raise UnknownNameError(kind="method", name=method, known=list(METHODS))
    if law not in LAWS:
        raise UnknownNameError(kind="law", name=law, known=sorted(LAWS))
    if method == "parametric":
        return _fit_parametric(
            runs, law, huber_delta, bootstrap, seed, progress, budget_tol, holdout
        )
    result = _fit_frontier(runs, method, bootstrap, seed, progress, budget_tol, holdout)
    if law != "chinchilla":
        note = f"law {law!r} ignored: the {method} method fits a power-law frontier"
        result = replace(result, warnings=(note, *result.warnings))
    return result


def _fit_parametric(
    runs: RunArrays,
    law: str,
    delta: float,
    n_boot: int,
    seed: int,
    progress: Progress | None,
    budget_tol: float,
    holdout: bool,
) -> FitResult:
    _check_parametric(runs, law, budget_tol)
    check_loss_varies(runs, f"the {law} law")
    est, objective, iterations, converged, theta = _parametric_once(runs, law, delta)
    if not np.all(np.isfinite(est.values())):
        raise DegenerateDataError(
            target=f"the {law} law",
            reason="the fit did not reach finite parameters; a loss far from the others (say "
            f"{float(runs.loss.min()):.3g} against a median {float(np.median(runs.loss)):.3g}) "
            "can do that: exclude it",
        )
    resid = _log_residuals(est, runs)
    _check_bounds(est, runs, float(np.sqrt(np.mean(resid * resid))))
    warnings: list[str] = []
    if isinstance(est, Chinchilla | DataConstrained):
        below = int(np.sum(runs.loss < est.E))
        if below:
            warnings.append(
                f"{below} run(s) have a loss below the fitted irreducible loss E = {est.E:.4g}, "
                "which no size or data can reach under this law"
            )
    if isinstance(est, DataConstrained):
        for name, j in (("R_D_star", 5), ("R_N_star", 6)):
            lo, hi = DC_BOUNDS[j]
            assert lo is not None
            assert hi is not None
            v = float(np.log(getattr(est, name)))
            if v < lo + 1e-3 or v > hi - 1e-3:
                warnings.append(f"{name} = {np.exp(v):.3g} is at its bound: not identified")
    outliers = _outliers(resid)
    if outliers:
        warnings.append(
            f"{len(outliers)} possible outlier run(s) (robust |z| > {OUTLIER_Z:g}), listed in "
            "`outliers`; kept in the fit"
        )
    if runs.flags is not None and runs.flags.any():
        warnings.append(f"{int(runs.flags.sum())} row(s) flagged by the caller; kept in the fit")
    if not converged:
        warnings.append("optimiser did not report convergence")
    extrap: float | None = None
    if holdout:
        labels = budget_labels(runs, rel_tol=budget_tol)
        top = int(labels[np.argmax(runs.flops)])
        train, test = np.flatnonzero(labels != top), np.flatnonzero(labels == top)
        try:
            sub = runs.take(train)
            _check_parametric(sub, law, budget_tol)
            law_h = _parametric_once(sub, law, delta)[0]
            r = _log_residuals(law_h, runs.take(test))
            extrap = float(np.sqrt(np.mean(r * r)))
        except ScalingError as exc:
            warnings.append(f"no leave-largest-budget-out check: {exc}")
    samples: list[tuple[float, ...]] = []
    if n_boot > 0:
        samples = _bootstrap_parametric(
            runs, law, est, theta, delta, n_boot, seed, progress, warnings
        )
    return FitResult(
        law=est,
        method="parametric",
        n_runs=len(runs),
        huber_delta=delta,
        objective=objective,
        iterations=iterations,
        converged=converged,
        rmse_log_loss=float(np.sqrt(np.mean(resid * resid))),
        extrapolation_error=extrap,
        max_flops=float(runs.flops.max()),
        outliers=outliers,
        warnings=tuple(warnings),
        bootstrap_samples=tuple(samples),
        seed=seed,
    )


def _bootstrap_parametric(
    runs: RunArrays,
    law: str,
    est: AnyLaw,
    theta: FloatArray,
    delta: float,
    n_boot: int,
    seed: int,
    progress: Progress | None,
    warnings: list[str],
) -> list[tuple[float, ...]]:
    rng = np.random.default_rng(seed)
    n = len(runs)
    units = runs.resampling_units()
    if law == "chinchilla":
        if units is None:
            counts = rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot)
        else:
            counts = resample_groups(units, rng, n_boot)
        res = bootstrap_refits(
            theta,
            np.log(runs.params),
            np.log(runs.tokens),
            runs.loss,
            delta,
            counts,
            progress=progress,
        )
        if not res.converged.all():
            warnings.append(f"{int((~res.converged).sum())} bootstrap refit(s) did not converge")
        t = res.theta
        vals = np.stack([np.exp(t[:, 2]), np.exp(t[:, 0]), np.exp(t[:, 1]), t[:, 3], t[:, 4]], 1)
        return [tuple(float(x) for x in row) for row in vals]
    members = (
        None if units is None else [np.flatnonzero(units == u) for u in range(units.max() + 1)]
    )
    out: list[tuple[float, ...]] = []
    for i in range(n_boot):
        if members is None:
            idx = rng.integers(0, n, n)
        else:
            idx = np.concatenate([members[u] for u in rng.integers(0, len(members), len(members))])
        law_i: AnyLaw = _parametric_once(runs.take(idx), law, delta, theta0=theta)[0]
        out.append(law_i.values())
        if progress is not None:
            progress((i + 1) / n_boot)
    return out


def _fit_frontier(
    runs: RunArrays,
    method: str,
    n_boot: int,
    seed: int,
    progress: Progress | None,
    budget_tol: float,
    holdout: bool,
) -> FitResult:
    warnings: list[str] = []
    extrap: float | None = None
    budgets: tuple[BudgetMinimum, ...] = ()
    dropped: tuple[DroppedBudget, ...] = ()
    grouping = ""
    rmse: float | None
    iso: IsoflopFit | None = None
    if method == "isoflop":
        iso = fit_isoflop(runs, rel_tol=budget_tol)
        front: Frontier = iso.frontier
        budgets, rmse, dropped, grouping = iso.budgets, iso.rmse_log_loss, iso.dropped, iso.grouping
        warnings.extend(iso.warnings)
        if dropped:
            flat = sum("no upward parabola" in d.reason for d in dropped)
            warnings.append(
                f"{len(dropped)} of {len(dropped) + len(budgets)} budget groups dropped, each "
                f"with its reason in `dropped_budgets`: {flat} without an upward parabola "
                f"(fewer than 3 sizes, or loss not convex in log N), {len(dropped) - flat} with "
                "a minimum far outside their sizes"
            )
        if holdout and len(iso.budgets) >= 3:
            labels = budget_labels(runs, rel_tol=budget_tol)
            top = int(labels[np.argmax(runs.flops)])
            try:
                held = fit_isoflop(runs.take(np.flatnonzero(labels != top)), rel_tol=budget_tol)
                last = max(iso.budgets, key=lambda m: m.flops)
                pred = float(held.frontier.params(last.flops))
                extrap = abs(float(np.log(pred / last.params_opt)))
            except ScalingError as exc:
                warnings.append(f"no leave-largest-budget-out check: {exc}")
    else:
        front, _n_points = fit_envelope(runs)
        rmse = None
    samples: list[tuple[float, ...]] = []
    if n_boot > 0:
        rng = np.random.default_rng(seed)
        failed = 0
        resampled = residual_resample(runs, iso, rng, n_boot) if iso is not None else []
        for i in range(n_boot):
            try:
                if iso is not None:
                    refit = fit_isoflop(
                        resampled[i], rel_tol=budget_tol, labels=iso.labels, refuse_noise=False
                    )
                    samples.append(refit.frontier.values())
                else:
                    samples.append(fit_envelope(_resample_units(runs, rng))[0].values())
            except ScalingError:
                failed += 1
            if progress is not None:
                progress((i + 1) / n_boot)
        if failed:
            warnings.append(f"{failed} of {n_boot} bootstrap resamples could not be fitted")
        warnings.extend(_interval_warnings(front, samples))
    return FitResult(
        law=front,
        method=method,
        n_runs=len(runs),
        huber_delta=None,
        objective=None,
        iterations=0,
        converged=True,
        rmse_log_loss=rmse,
        extrapolation_error=extrap,
        max_flops=float(runs.flops.max()),
        warnings=tuple(warnings),
        budgets=budgets,
        bootstrap_samples=tuple(samples),
        seed=seed,
        dropped_budgets=dropped,
        grouping=grouping,
    )


def _resample_units(runs: RunArrays, rng: np.random.Generator) -> RunArrays:
    """A bootstrap resample of whole units (trunks, or runs of curve points; rows when neither):
    the units drawn with replacement, each copy relabelled as a unit of its own."""
    units = runs.resampling_units()
    if units is None:
        units = np.arange(len(runs), dtype=np.int64)
    n_units = int(units.max()) + 1
    parts = [np.flatnonzero(units == u) for u in rng.choice(n_units, size=n_units)]
    sub = runs.take(np.concatenate(parts))
    labels = np.concatenate([np.full(p.size, j) for j, p in enumerate(parts)])
    return RunArrays(sub.params, sub.tokens, sub.loss, flops=sub.flops, groups=labels)


def _interval_warnings(front: Frontier, samples: list[tuple[float, ...]]) -> list[str]:
    """Flag a 95% interval of a that leaves (0, 1), or misses the point estimate."""
    if len(samples) < 2:
        return []
    a = np.array([row[1] for row in samples])
    lo, hi = (float(v) for v in np.percentile(a, [2.5, 97.5]))
    out = []
    if lo <= 0.0 or hi >= 1.0:
        out.append(
            f"the 95% bootstrap interval of a ({lo:.3g}, {hi:.3g}) leaves (0, 1): these runs "
            "do not pin down how to split compute between parameters and tokens"
        )
    if not lo <= front.a <= hi:
        out.append(
            f"the estimate a = {front.a:.4g} lies outside its own 95% bootstrap interval "
            f"({lo:.4g}, {hi:.4g}): the resamples disagree with the fit; trust neither"
        )
    elif np.isclose(hi, lo) and len(samples) > 1:
        out.append("the bootstrap interval of a has zero width: the resamples carry no noise")
    return out
