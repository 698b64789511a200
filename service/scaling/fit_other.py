"""Huber fits of the Kaplan joint law and the data-constrained law (Muennighoff et al. 2023).

Neither has the linear substructure the Chinchilla fit exploits, and neither is on the hot path:
a vectorised coarse screen of starts, then L-BFGS-B from the best few.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import minimize

from service.scaling.laws import Chinchilla, DataConstrained, Kaplan
from service.scaling.objective import huber

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class LocalFit:
    x: FloatArray
    objective: float
    iterations: int
    converged: bool


def _lbfgs(
    fun: Callable[[FloatArray], float | tuple[float, FloatArray]],
    x0: FloatArray,
    bounds: list[tuple[float | None, float | None]],
    jac: bool,
) -> LocalFit:
    res = minimize(
        fun,
        x0,
        jac=jac or None,
        method="L-BFGS-B",
        bounds=bounds,
        options={"maxiter": 5000, "ftol": 1e-15, "gtol": 1e-11},
    )
    f = fun(res.x)
    return LocalFit(
        x=np.asarray(res.x),
        objective=float(f[0] if isinstance(f, tuple) else f),
        iterations=int(res.nit),
        converged=bool(res.success),
    )


# ---------------------------------------------------------------- Kaplan
# theta = (log N_c, log D_c, alpha_N, alpha_D); log L = alpha_D * LSE(u, v) with
# u = (alpha_N/alpha_D)(log N_c - log N), v = log D_c - log D.
KAPLAN_BOUNDS: list[tuple[float | None, float | None]] = [
    (None, None),
    (None, None),
    (1e-4, 3.0),
    (1e-4, 3.0),
]


def _kaplan_terms(
    theta: FloatArray, log_n: FloatArray, log_d: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    lnc, ldc, an, ad = (theta[:, j : j + 1] for j in range(4))
    u = (an / ad) * (lnc - log_n)
    v = ldc - log_d
    m = np.maximum(u, v)
    s = np.exp(u - m) + np.exp(v - m)
    lse = m + np.log(s)
    p_u = np.exp(u - m) / s
    return ad * lse, lse, p_u, u


def kaplan_objective(
    theta: FloatArray, log_n: FloatArray, log_d: FloatArray, log_l: FloatArray, delta: float
) -> FloatArray:
    pred = _kaplan_terms(theta, log_n, log_d)[0]
    return np.asarray(huber(pred - log_l, delta).sum(axis=1))


def fit_kaplan(
    log_n: FloatArray, log_d: FloatArray, log_l: FloatArray, delta: float, theta0: FloatArray | None
) -> tuple[Kaplan, LocalFit]:
    def fun(x: FloatArray) -> tuple[float, FloatArray]:
        th = x.reshape(1, 4)
        pred, lse, p_u, u = _kaplan_terms(th, log_n, log_d)
        r = (pred - log_l)[0]
        dh = np.clip(r, -delta, delta)
        lnc, _ldc, an, ad = x
        p_u0, u0, lse0 = p_u[0], u[0], lse[0]
        g = np.array(
            [
                dh @ (an * p_u0),
                dh @ (ad * (1.0 - p_u0)),
                dh @ (p_u0 * (lnc - log_n)),
                dh @ (lse0 - p_u0 * u0),
            ]
        )
        return float(huber(r, delta).sum()), g

    if theta0 is not None:
        starts = theta0.reshape(1, 4)
    else:
        mid_n, mid_d = float(np.median(log_n)), float(np.median(log_d))
        grids = np.meshgrid(
            mid_n + np.array([-5.0, 0.0, 5.0, 12.0, 20.0]),
            mid_d + np.array([-5.0, 0.0, 5.0, 12.0, 20.0]),
            np.array([0.03, 0.07, 0.15, 0.3, 0.6]),
            np.array([0.03, 0.07, 0.15, 0.3, 0.6]),
            indexing="ij",
        )
        cand = np.stack([g.ravel() for g in grids], axis=1)
        f = kaplan_objective(cand, log_n, log_d, log_l, delta)
        starts = cand[np.argsort(f)[:6]]
    best: LocalFit | None = None
    for x0 in starts:
        res = _lbfgs(fun, x0, KAPLAN_BOUNDS, jac=True)
        if best is None or res.objective < best.objective:
            best = res
    assert best is not None
    lnc, ldc, an, ad = best.x
    return Kaplan(N_c=float(np.exp(lnc)), D_c=float(np.exp(ldc)), alpha_N=an, alpha_D=ad), best


# ---------------------------------------------------------------- data-constrained
# theta = (log A, log B, log E, alpha, beta, log R_D*, log R_N*)
DC_BOUNDS: list[tuple[float | None, float | None]] = [
    (None, None),
    (None, None),
    (None, None),
    (1e-3, 5.0),
    (1e-3, 5.0),
    (np.log(1e-2), np.log(1e4)),
    (np.log(1e-2), np.log(1e4)),
]


def dc_from_theta(x: FloatArray) -> DataConstrained:
    a, b, e, alpha, beta, lrd, lrn = (float(v) for v in x)
    return DataConstrained(
        E=np.exp(e),
        A=np.exp(a),
        B=np.exp(b),
        alpha=alpha,
        beta=beta,
        R_D_star=np.exp(lrd),
        R_N_star=np.exp(lrn),
    )


def fit_data_constrained(
    params: FloatArray,
    tokens: FloatArray,
    unique_tokens: FloatArray,
    log_l: FloatArray,
    delta: float,
    base: Chinchilla,
    *,
    theta0: FloatArray | None = None,
) -> tuple[DataConstrained, LocalFit]:
    """Polish all seven parameters from the one-epoch fit ``base`` and the best R* on a grid."""

    def fun(x: FloatArray) -> float:
        pred = dc_from_theta(x).predict(params, tokens, unique_tokens=unique_tokens)
        return float(huber(np.log(pred) - log_l, delta).sum())

    if theta0 is None:
        head = [np.log(base.A), np.log(base.B), np.log(base.E), base.alpha, base.beta]
        rs = np.log(np.geomspace(0.1, 1000.0, 13))
        scored = [(fun(np.array([*head, rd, rn])), rd, rn) for rd in rs for rn in rs]
        _, rd, rn = min(scored)
        theta0 = np.array([*head, rd, rn])
    res = _lbfgs(fun, theta0, DC_BOUNDS, jac=False)
    return dc_from_theta(res.x), res
