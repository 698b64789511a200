"""Power-law compute-optimal frontiers (Approaches 1 and 2).

N_opt = k_N C^a (params), D_opt = k_D C^b (tokens), L_opt = k_L C^-gamma (nats/token), with C in
FLOPs. The loss line is a plain power law fitted to the per-budget minima: good for interpolation,
and it has no irreducible term, so it is optimistic far beyond the data.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

from service.scaling.laws import as_plain_floats

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class Frontier:
    k_N: float  # noqa: N815 (JSON name)
    a: float
    k_D: float  # noqa: N815 (JSON name)
    b: float
    k_L: float  # noqa: N815 (JSON name)
    gamma: float

    name: ClassVar[str] = "frontier"
    param_names: ClassVar[tuple[str, ...]] = ("k_N", "a", "k_D", "b", "k_L", "gamma")

    def __post_init__(self) -> None:
        as_plain_floats(self)

    def params(self, flops: ArrayLike) -> FloatArray:
        return np.asarray(self.k_N * np.asarray(flops, dtype=np.float64) ** self.a)

    def tokens(self, flops: ArrayLike) -> FloatArray:
        return np.asarray(self.k_D * np.asarray(flops, dtype=np.float64) ** self.b)

    def loss(self, flops: ArrayLike) -> FloatArray:
        return np.asarray(self.k_L * np.asarray(flops, dtype=np.float64) ** -self.gamma)

    def flops_for_loss(self, loss: float) -> float:
        return float((loss / self.k_L) ** (-1.0 / self.gamma))

    def values(self) -> tuple[float, ...]:
        return (self.k_N, self.a, self.k_D, self.b, self.k_L, self.gamma)

    def to_json(self) -> dict[str, Any]:
        return {"law": self.name, **asdict(self)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Frontier:
        return cls(*(float(data[k]) for k in cls.param_names))


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


def frontier_from_points(
    flops: FloatArray,
    params_opt: FloatArray,
    loss_opt: FloatArray,
    *,
    sigma_log_n: FloatArray | None = None,
) -> Frontier:
    k_N, a, _ = fit_power_law(flops, params_opt, sigma_log=sigma_log_n)
    k_D, b, _ = fit_power_law(flops, flops / (6.0 * params_opt), sigma_log=sigma_log_n)
    k_L, neg_gamma, _ = fit_power_law(flops, loss_opt)
    return Frontier(k_N=k_N, a=a, k_D=k_D, b=b, k_L=k_L, gamma=-neg_gamma)
