"""Power-law compute-optimal frontiers (Approaches 1 and 2).

N_opt = k_N C^a (params), D_opt = k_D C^b (tokens), L_opt = E + k_L C^-gamma (nats/token), with C
in FLOPs. The loss line has an irreducible term E, as the parametric law's frontier does
(L*(C) = E + K (C/6)^-gamma there): a plain power law in C falls towards zero loss and is far too
optimistic beyond the data. E is fitted to the per-budget minima (at least 3 of them). E = 0
means no irreducible term (fewer than 3 budgets, a fit whose E ran to its bound 0, or a frontier
stored before E was fitted): loss answers are then refused (``flops_for_loss``) or flagged by
the caller.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import least_squares

from service.scaling.errors import DegenerateDataError, UnreachableLossError
from service.scaling.laws import as_plain_floats

FloatArray = NDArray[np.float64]

# Least budget minima for the 3-parameter loss line E + k_L C^-gamma.
MIN_POINTS_FOR_E = 3


@dataclass(frozen=True)
class Frontier:
    k_N: float  # noqa: N815 (JSON name)
    a: float
    k_D: float  # noqa: N815 (JSON name)
    b: float
    k_L: float  # noqa: N815 (JSON name)
    gamma: float
    E: float = 0.0  # 0: no irreducible term, a plain power law that gives no loss answers

    name: ClassVar[str] = "frontier"
    param_names: ClassVar[tuple[str, ...]] = ("k_N", "a", "k_D", "b", "k_L", "gamma", "E")

    def __post_init__(self) -> None:
        as_plain_floats(self)

    @property
    def E_fitted(self) -> bool:  # noqa: N802 (E as in the law)
        """Whether the loss line has an irreducible term (E > 0) and can answer loss questions."""
        return self.E > 0.0

    def params(self, flops: ArrayLike) -> FloatArray:
        return np.asarray(self.k_N * np.asarray(flops, dtype=np.float64) ** self.a)

    def tokens(self, flops: ArrayLike) -> FloatArray:
        return np.asarray(self.k_D * np.asarray(flops, dtype=np.float64) ** self.b)

    def loss(self, flops: ArrayLike) -> FloatArray:
        return np.asarray(self.E + self.k_L * np.asarray(flops, dtype=np.float64) ** -self.gamma)

    def flops_for_loss(self, loss: float) -> float:
        if not self.E_fitted:
            raise DegenerateDataError(
                target="the compute for a target loss",
                reason="this frontier's loss line has no irreducible term (E = 0: fewer than 3 "
                "budgets, E not identified, or stored before E was fitted), so it falls towards "
                "zero loss; refit with 3 or more budgets, or use a parametric fit",
            )
        if loss <= self.E:
            raise UnreachableLossError(
                target_loss=loss,
                reason=f"at or below the frontier's irreducible loss E = {self.E:.4g}",
            )
        return float(((loss - self.E) / self.k_L) ** (-1.0 / self.gamma))

    def values(self) -> tuple[float, ...]:
        return (self.k_N, self.a, self.k_D, self.b, self.k_L, self.gamma, self.E)

    def to_json(self) -> dict[str, Any]:
        return {"law": self.name, **vars(self)}  # flat floats: no deep copy needed

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Frontier:
        # Frontiers stored before E was fitted have no "E": a plain power-law loss line.
        values = {k: float(data[k]) for k in cls.param_names[:6]}
        return cls(**values, E=float(data.get("E", 0.0)))


def fit_power_law(
    flops: FloatArray, y: FloatArray, *, sigma_log: FloatArray | None = None
) -> tuple[float, float, NDArray[np.float64]]:
    """Weighted least squares of log y = log k + p log C; returns k, p and cov(log k, p)."""
    X = np.stack([np.ones_like(flops), np.log(flops)], axis=1)
    w = np.ones_like(flops) if sigma_log is None else 1.0 / np.maximum(sigma_log, 1e-6) ** 2
    XtW = X.T * w
    cov = np.linalg.inv(XtW @ X)
    coef = cov @ (XtW @ np.log(y))
    resid = np.log(y) - X @ coef
    dof = max(flops.size - 2, 1)
    if sigma_log is None:
        cov = cov * float(resid @ resid) / dof
    return float(np.exp(coef[0])), float(coef[1]), cov


def fit_loss_line(flops: FloatArray, loss: FloatArray) -> tuple[float, float, float]:
    """(E, k_L, gamma) of loss = E + k_L C^-gamma, least squares in log loss, 0 <= E < min loss.

    E is profiled on a grid (for fixed E the line is linear in log C), then all three are
    polished together. E = 0 (the plain power law) is one of the candidates.
    """
    x, y = np.log(flops), np.log(loss)
    X = np.stack([np.ones_like(x), x], axis=1)
    lmin = float(loss.min())

    def profile(E: float) -> tuple[float, FloatArray]:
        coef = np.linalg.lstsq(X, np.log(loss - E), rcond=None)[0]
        r = np.log(E + np.exp(X @ coef)) - y
        return float(r @ r), coef

    grid = np.concatenate([[0.0], lmin * (1.0 - np.geomspace(1.0, 1e-4, 120))[1:]])
    scores = [profile(float(E))[0] for E in grid]
    E0 = float(grid[int(np.argmin(scores))])
    c0 = profile(E0)[1]
    hi = lmin * (1.0 - 1e-9)

    def resid(t: FloatArray) -> FloatArray:
        E, lk, g = t
        return np.asarray(np.log(E + np.exp(lk + g * x)) - y)

    start = np.array([min(E0, hi * (1.0 - 1e-6)), c0[0], c0[1]])
    res = least_squares(
        resid, start, bounds=([0.0, -np.inf, -np.inf], [hi, np.inf, np.inf]), xtol=1e-14
    )
    E, lk, g = (float(v) for v in res.x)
    if float(res.cost) * 2.0 > min(scores):  # the polish did not improve on the grid
        E, lk, g = E0, float(c0[0]), float(c0[1])
    return E, float(np.exp(lk)), -g


def frontier_from_points(
    flops: FloatArray,
    params_opt: FloatArray,
    loss_opt: FloatArray,
    *,
    sigma_log_n: FloatArray | None = None,
) -> Frontier:
    k_N, a, _ = fit_power_law(flops, params_opt, sigma_log=sigma_log_n)
    k_D, b, _ = fit_power_law(flops, flops / (6.0 * params_opt), sigma_log=sigma_log_n)
    if np.unique(flops).size >= MIN_POINTS_FOR_E:
        E, k_L, gamma = fit_loss_line(flops, loss_opt)
        return Frontier(k_N=k_N, a=a, k_D=k_D, b=b, k_L=k_L, gamma=gamma, E=E)
    k_L, neg_gamma, _ = fit_power_law(flops, loss_opt)
    return Frontier(k_N=k_N, a=a, k_D=k_D, b=b, k_L=k_L, gamma=-neg_gamma, E=0.0)
