"""Chinchilla Approach 3: Huber on log loss, summed; the global optimum, found fast.

The paper runs L-BFGS from 4500 grid starts. We exploit the structure instead: for fixed
(alpha, beta) the law is linear in (E, A, B), so a dense exponent grid is scored with one batched
3x3 least-squares solve per grid point (relative error ~ log residual). The best distinct basins
are then polished together by a batched damped Newton method on the exact objective (analytic
gradient and Hessian). Bootstrap refits reuse the same batched Newton, warm-started at the
full-data optimum, with resamples expressed as per-run counts (weights).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import nnls

from service.scaling.objective import chinchilla_derivatives, chinchilla_objective

FloatArray = NDArray[np.float64]

EXPONENT_BOUNDS = (0.0, 5.0)
# Floor for log E, log A, log B when the linear pre-fit puts a coefficient at zero.
_LOG_FLOOR = -20.0
_STEPS = np.array([1.0, 0.5, 0.25, 0.1, 0.03, 0.01, 1e-3])


@dataclass(frozen=True)
class Polished:
    theta: FloatArray  # (K, 5): log A, log B, log E, alpha, beta
    objective: FloatArray  # (K,)
    iterations: int
    converged: NDArray[np.bool_]  # (K,)


def exponent_grid(*, n: int = 36) -> FloatArray:
    return np.geomspace(0.02, 3.0, n)


def linear_prefit(
    log_n: FloatArray, log_d: FloatArray, loss: FloatArray, alphas: FloatArray, betas: FloatArray
) -> FloatArray:
    """For every (alpha, beta) pair, (E, A, B) >= 0 minimising sum((E + A x + B y)/L - 1)^2.

    Returns theta candidates of shape (len(alphas) * len(betas), 5).
    """
    w = 1.0 / loss
    X = np.exp(-np.outer(alphas, log_n)) * w
    Y = np.exp(-np.outer(betas, log_d)) * w
    na, nb = alphas.size, betas.size
    G = np.empty((na, nb, 3, 3))
    G[:, :, 0, 0] = w @ w
    G[:, :, 0, 1] = G[:, :, 1, 0] = (X @ w)[:, None]
    G[:, :, 0, 2] = G[:, :, 2, 0] = (Y @ w)[None, :]
    G[:, :, 1, 1] = np.einsum("an,an->a", X, X)[:, None]
    G[:, :, 2, 2] = np.einsum("bn,bn->b", Y, Y)[None, :]
    G[:, :, 1, 2] = G[:, :, 2, 1] = X @ Y.T
    rhs = np.empty((na, nb, 3))
    rhs[:, :, 0] = w.sum()
    rhs[:, :, 1] = X.sum(axis=1)[:, None]
    rhs[:, :, 2] = Y.sum(axis=1)[None, :]
    # A tiny ridge: the columns are nearly collinear when an exponent is close to 0.
    ridge = 1e-12 * np.trace(G, axis1=2, axis2=3)[..., None, None] * np.eye(3)
    coef = np.linalg.solve(G + ridge, rhs[..., None])[..., 0]
    for i, j in np.argwhere((coef <= 0).any(axis=2)):
        M = np.stack([w, X[i], Y[j]], axis=1)
        coef[i, j] = nnls(M, np.ones_like(w))[0]
    log_coef = np.log(np.maximum(coef, np.exp(_LOG_FLOOR)))
    aa, bb = np.meshgrid(alphas, betas, indexing="ij")
    return np.stack(
        [log_coef[..., 1], log_coef[..., 2], log_coef[..., 0], aa, bb], axis=-1
    ).reshape(-1, 5)


def _line_search(
    theta: FloatArray,
    step: FloatArray,
    f: FloatArray,
    problem: tuple[FloatArray, FloatArray, FloatArray, float, FloatArray | None],
    *,
    full_step_first: bool,
) -> tuple[FloatArray, FloatArray]:
    """Per start, the best of the ``_STEPS`` lengths along ``step`` (exponents clipped to
    their bounds). With ``full_step_first``, the full step wherever it lowers the objective and
    the best of the shorter ones elsewhere: near an optimum (warm-started bootstrap refits) the
    full step nearly always wins, so an iteration evaluates the objective once, not seven times.
    Far from one (the global fit's grid starts) the best of all lengths finds better basins."""
    log_n, log_d, log_l, delta, weights = problem
    lo, hi = EXPONENT_BOUNDS
    first = 1 if full_step_first else 0
    out = theta + step
    out[:, 3:] = np.clip(out[:, 3:], lo, hi)
    f_out = np.full(theta.shape[0], np.inf)
    if full_step_first:
        f_out = chinchilla_objective(out, log_n, log_d, log_l, delta, weights=weights)
    retry = np.flatnonzero(~(f_out < f)) if full_step_first else np.arange(theta.shape[0])
    if retry.size == 0:
        return out, f_out
    lengths = _STEPS[first:]
    cand = theta[None, retry] + lengths[:, None, None] * step[None, retry]
    cand[..., 3:] = np.clip(cand[..., 3:], lo, hi)
    wt = None if weights is None else np.tile(weights[retry], (lengths.size, 1))
    fc = chinchilla_objective(cand.reshape(-1, 5), log_n, log_d, log_l, delta, weights=wt)
    fc = fc.reshape(lengths.size, retry.size)
    best = np.argmin(fc, axis=0)
    out[retry] = cand[best, np.arange(retry.size)]
    f_out[retry] = fc[best, np.arange(retry.size)]
    return out, f_out


def newton_polish(
    starts: FloatArray,
    log_n: FloatArray,
    log_d: FloatArray,
    log_l: FloatArray,
    delta: float,
    *,
    weights: FloatArray | None = None,
    maxiter: int = 200,
    rtol: float = 1e-13,
    full_step_first: bool = False,
) -> Polished:
    """Damped Newton from K starts at once.

    The Hessian's eigenvalues are floored (absolute value, then a Levenberg-style fraction of the
    largest) so each step is a descent direction; a few step lengths are tried
    (``_line_search``). A start stops when its relative decrease falls below ``rtol``.
    """
    theta = np.array(starts, dtype=np.float64, copy=True)
    K = theta.shape[0]
    lam = np.full(K, 1e-8)
    f = chinchilla_objective(theta, log_n, log_d, log_l, delta, weights=weights)
    active = np.ones(K, dtype=bool)
    iterations = 0
    for iterations in range(1, maxiter + 1):  # noqa: B007
        idx = np.flatnonzero(active)
        if idx.size == 0:
            break
        th = theta[idx]
        w = None if weights is None else weights[idx]
        _, g, H = chinchilla_derivatives(th, log_n, log_d, log_l, delta, weights=w)
        # A start whose derivatives overflowed (e.g. a loss of 1e-300 among normal ones) stops
        # where it is; the others go on (eigh of a non-finite matrix raises LinAlgError).
        finite = np.isfinite(H).all(axis=(1, 2)) & np.isfinite(g).all(axis=1)
        if not finite.all():
            active[idx[~finite]] = False
            idx, th, g, H = idx[finite], th[finite], g[finite], H[finite]
            w = None if w is None else w[finite]
            if idx.size == 0:
                break
        ev, V = np.linalg.eigh(H)
        floor = (lam[idx] * np.maximum(np.abs(ev).max(axis=1), 1e-300))[:, None]
        inv = 1.0 / np.maximum(np.abs(ev), floor)
        # step = -V diag(inv) V^T g
        step = -np.matmul(V, (inv * np.matmul(g[:, None, :], V)[:, 0, :])[..., None])[..., 0]
        new_theta, fnew = _line_search(
            th, step, f[idx], (log_n, log_d, log_l, delta, w), full_step_first=full_step_first
        )
        improved = fnew < f[idx]
        rel = (f[idx] - fnew) / np.maximum(np.abs(f[idx]), 1e-300)
        sel = idx[improved]
        theta[sel] = new_theta[improved]
        f[sel] = fnew[improved]
        lam[sel] = np.maximum(lam[sel] * 0.3, 1e-10)
        lam[idx[~improved]] *= 10.0
        done = (improved & (rel < rtol)) | (~improved & (lam[idx] > 1e2))
        active[idx[done]] = False
    return Polished(theta=theta, objective=f, iterations=iterations, converged=~active)


def global_fit(
    log_n: FloatArray,
    log_d: FloatArray,
    loss: FloatArray,
    delta: float,
    *,
    n_starts: int = 24,
    grid: FloatArray | None = None,
) -> Polished:
    """Best of ``n_starts`` Newton-polished starts: the best distinct basins of a scored grid."""
    log_l = np.log(loss)
    g = exponent_grid() if grid is None else grid
    cand = linear_prefit(log_n, log_d, loss, g, g)
    f = chinchilla_objective(cand, log_n, log_d, log_l, delta)
    order = np.argsort(f)
    log_exp = np.log(cand[:, 3:5])
    # Distinct basins: skip candidates next to an already chosen one on the exponent grid.
    min_sep = 1.5 * np.log(g[1] / g[0])
    chosen: list[int] = []
    for idx in order:
        if all(np.max(np.abs(log_exp[idx] - log_exp[c])) > min_sep for c in chosen):
            chosen.append(int(idx))
            if len(chosen) == n_starts:
                break
    res = newton_polish(cand[chosen], log_n, log_d, log_l, delta)
    best = int(np.argmin(res.objective))
    return Polished(
        theta=res.theta[best : best + 1],
        objective=res.objective[best : best + 1],
        iterations=res.iterations,
        converged=res.converged[best : best + 1],
    )


def bootstrap_refits(
    theta0: FloatArray,
    log_n: FloatArray,
    log_d: FloatArray,
    loss: FloatArray,
    delta: float,
    counts: NDArray[np.int64],
    *,
    chunk: int = 500,
    workers: int | None = None,
    progress: Callable[[float], None] | None = None,
) -> Polished:
    """Refit every resample (per-run counts, shape (B, n)) warm-started at ``theta0``.

    Chunks of ``chunk`` resamples are refitted on ``workers`` threads (default: one per CPU):
    numpy releases the GIL in the array work that takes the time. Each chunk is independent, so
    the answer does not depend on the number of workers.
    """
    log_l = np.log(loss)
    B = counts.shape[0]
    theta = np.empty((B, 5))
    f = np.empty(B)
    conv = np.empty(B, dtype=bool)
    bounds = [(start, min(start + chunk, B)) for start in range(0, B, chunk)]

    def refit(start: int, stop: int) -> Polished:
        w = counts[start:stop].astype(np.float64)
        starts = np.repeat(theta0.reshape(1, 5), w.shape[0], axis=0)
        return newton_polish(starts, log_n, log_d, log_l, delta, weights=w, full_step_first=True)

    iterations, done = 0, 0
    n_workers = max(1, min(workers or os.cpu_count() or 1, len(bounds)))
    with ThreadPoolExecutor(n_workers) as pool:
        futures = {pool.submit(refit, start, stop): (start, stop) for start, stop in bounds}
        for future in as_completed(futures):
            start, stop = futures[future]
            res = future.result()
            theta[start:stop], f[start:stop] = res.theta, res.objective
            conv[start:stop] = res.converged
            iterations = max(iterations, res.iterations)
            done += stop - start
            if progress is not None:
                progress(done / B)
    return Polished(theta=theta, objective=f, iterations=iterations, converged=conv)
