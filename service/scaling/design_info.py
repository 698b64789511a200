"""Linearised (Fisher) information of a Chinchilla fit, for planning runs.

theta = (log A, log B, log E, alpha, beta), as in ``objective.py``. With log-loss noise of size
sigma, a run at (N, D) adds j j^T / sigma^2 to the information, j = d log L(N, D) / d theta =
(p1, p2, p3, -p1 log N, -p2 log D) with p the shares of the A, B and E terms in the loss. The
quantity planned for is f = log N_opt(C) = [log(alpha A / (beta B)) + beta log(C/6)] / (alpha +
beta) (Hoffmann et al. eq. 4); its linearised variance is g^T Sigma g, Sigma the inverse
information (plus a weak prior, so that a design which cannot identify theta yet stays finite).

Points of one training trunk (cooldown branches) are not independent: their log-noise is
sigma^2 ((1 - rho) I + rho 1 1^T) (``service.scaling.branches``), so a trunk of k points adds
J^T R^-1 J, less than k independent runs would; ``block_drops`` and ``add_block`` score and add
a run of several points that way.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from service.scaling.laws import AnyLaw, Chinchilla

FloatArray = NDArray[np.float64]

# Prior standard deviations of (log A, log B, log E, alpha, beta): weak, only for invertibility.
PRIOR_SD = np.array([3.0, 3.0, 1.0, 0.5, 0.5])


def log_loss_jacobian(law: Chinchilla, params: ArrayLike, tokens: ArrayLike) -> FloatArray:
    """d log L / d theta for each run, shape (n, 5)."""
    N = np.atleast_1d(np.asarray(params, dtype=np.float64))
    D = np.atleast_1d(np.asarray(tokens, dtype=np.float64))
    t1 = law.A * N**-law.alpha
    t2 = law.B * D**-law.beta
    L = law.E + t1 + t2
    p1, p2, p3 = t1 / L, t2 / L, np.full_like(L, law.E) / L
    return np.stack([p1, p2, p3, -p1 * np.log(N), -p2 * np.log(D)], axis=1)


def log_nopt_gradient(law: Chinchilla, flops: float) -> FloatArray:
    """d log N_opt(flops) / d theta."""
    al, be = law.alpha, law.beta
    s = al + be
    lc = float(np.log(flops / 6.0))
    num = np.log(al * law.A / (be * law.B)) + be * lc
    return np.array(
        [1.0 / s, -1.0 / s, 0.0, 1.0 / (al * s) - num / s**2, (lc - 1.0 / be) / s - num / s**2]
    )


def log_nopt(law: Chinchilla, flops: float) -> float:
    return float(np.log(law.G) + law.a * np.log(flops / 6.0))


def covariance(
    law: Chinchilla,
    params: ArrayLike,
    tokens: ArrayLike,
    sigma: float,
    *,
    groups: ArrayLike | None = None,
    trunk_correlation: float = 0.0,
) -> FloatArray:
    """Posterior covariance of theta after runs at (params, tokens), log-loss noise ``sigma``;
    rows sharing a ``groups`` label are points of one trunk, correlated by ``trunk_correlation``.
    """
    J = log_loss_jacobian(law, params, tokens) if np.size(params) else np.zeros((0, 5))
    rho = float(trunk_correlation)
    info = J.T @ J
    if groups is not None and rho > 0 and J.shape[0]:
        # R^-1 of a compound-symmetric block: (I - c 1 1^T) / (sigma^2 (1 - rho)), c as below.
        _, label, size = np.unique(np.asarray(groups), return_inverse=True, return_counts=True)
        sums = np.zeros((size.size, 5))
        np.add.at(sums, label, J)
        c = rho / (1.0 - rho + size * rho)
        info = (info - (sums.T * c) @ sums) / (1.0 - rho)
    info = info / sigma**2 + np.diag(PRIOR_SD**-2.0)
    return np.asarray(np.linalg.inv(info))


def variance_drops(
    sigma_theta: FloatArray, g: FloatArray, J: FloatArray, sigma: float
) -> FloatArray:
    """Reduction of Var[g^T theta] from adding each candidate row of J alone (Sherman-Morrison)."""
    Sj = J @ sigma_theta  # (m, 5)
    return np.asarray((Sj @ g) ** 2 / (sigma**2 + np.einsum("mi,mi->m", Sj, J)))


def block_drops(sigma_theta: FloatArray, g: FloatArray, J: FloatArray, R: FloatArray) -> FloatArray:
    """Reduction of Var[g^T theta] from adding each candidate run of k correlated points alone:
    J (m, k, 5) their Jacobian rows, R (k, k) their noise covariance (Woodbury)."""
    SJ = J @ sigma_theta  # (m, k, 5)
    u = SJ @ g  # (m, k)
    M = R[None] + np.einsum("mki,mli->mkl", SJ, J)
    return np.asarray(np.einsum("mk,mk->m", u, np.linalg.solve(M, u[..., None])[..., 0]))


def add_block(sigma_theta: FloatArray, J: FloatArray, R: FloatArray) -> FloatArray:
    """Covariance after one more run of k correlated points: J (k, 5), R (k, k)."""
    SJ = sigma_theta @ J.T  # (5, k)
    return np.asarray(sigma_theta - SJ @ np.linalg.solve(R + J @ SJ, SJ.T))


def add_run(sigma_theta: FloatArray, j: FloatArray, sigma: float) -> FloatArray:
    """Covariance after one more run with Jacobian row ``j``."""
    Sj = sigma_theta @ j
    return np.asarray(sigma_theta - np.outer(Sj, Sj) / (sigma**2 + j @ Sj))


def sd_log_nopt(sigma_theta: FloatArray, g: FloatArray) -> float:
    return float(np.sqrt(max(float(g @ sigma_theta @ g), 0.0)))


def simulate_loss(
    law: AnyLaw,
    params: ArrayLike,
    tokens: ArrayLike,
    noise: float,
    rng: np.random.Generator,
) -> FloatArray:
    """The law's loss times log-normal noise exp(eps), eps ~ Normal(0, ``noise``)."""
    L = np.asarray(law.predict(params, tokens), dtype=np.float64)
    if noise <= 0:
        return L
    return np.asarray(L * np.exp(rng.normal(0.0, noise, L.shape)))
