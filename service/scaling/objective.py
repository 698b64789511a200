"""The Chinchilla Approach-3 objective with analytic gradient and Hessian, batched.

theta = (a, b, e, alpha, beta) with A = e^a, B = e^b, E = e^e. For run i,
r_i = LSE(a - alpha log N_i, b - beta log D_i, e) - log L_i and the objective is
sum_i w_i Huber_delta(r_i): a SUM, as in Hoffmann et al. App. D.2 (w = bootstrap counts, or 1).
Every function takes K parameter sets at once, theta of shape (K, 5), weights (K, n) or None.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
# exp(x) is finite for x < 709.78; E = e^e alone keeps the sum away from 0 when e > -700.
_EXP_SAFE = 700.0


def huber(r: FloatArray, delta: float) -> FloatArray:
    absr = np.abs(r)
    return np.asarray(np.where(absr <= delta, 0.5 * r * r, delta * (absr - 0.5 * delta)))


def _softmax_terms(
    theta: FloatArray, log_n: FloatArray, log_d: FloatArray, log_l: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Residuals r (K, n) and the softmax weights of the A, B and E terms."""
    a, b, e, alpha, beta = (theta[:, j : j + 1] for j in range(5))
    t1 = a - alpha * log_n
    t2 = b - beta * log_d
    m = np.maximum(np.maximum(t1, t2), e)
    x1 = np.exp(t1 - m)
    x2 = np.exp(t2 - m)
    x3 = np.exp(e - m)
    s = x1 + x2 + x3
    return m + np.log(s) - log_l, x1 / s, x2 / s, x3 / s


def chinchilla_residuals(
    theta: FloatArray, log_n: FloatArray, log_d: FloatArray, log_l: FloatArray
) -> FloatArray:
    """r = log(A N^-alpha + B D^-beta + E) - log L, shape (K, n).

    Summed directly (two exponentials per run, E's once per row) when no term can overflow or
    all underflow, else through the max-shifted log-sum-exp: the objective is evaluated for
    every trial step of every bootstrap refit, and this is most of a refit's time.
    """
    a, b, e, alpha, beta = (theta[:, j : j + 1] for j in range(5))
    t1 = a - alpha * log_n
    t2 = b - beta * log_d
    if max(t1.max(), t2.max(), e.max()) < _EXP_SAFE and e.min() > -_EXP_SAFE:
        return np.asarray(np.log(np.exp(t1) + np.exp(t2) + np.exp(e)) - log_l)
    return _softmax_terms(theta, log_n, log_d, log_l)[0]


def chinchilla_objective(
    theta: FloatArray,
    log_n: FloatArray,
    log_d: FloatArray,
    log_l: FloatArray,
    delta: float,
    *,
    weights: FloatArray | None = None,
) -> FloatArray:
    h = huber(chinchilla_residuals(theta, log_n, log_d, log_l), delta)
    if weights is not None:
        h = h * weights
    return np.asarray(h.sum(axis=1))


def chinchilla_derivatives(
    theta: FloatArray,
    log_n: FloatArray,
    log_d: FloatArray,
    log_l: FloatArray,
    delta: float,
    *,
    weights: FloatArray | None = None,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Objective (K,), gradient (K, 5) and Hessian (K, 5, 5).

    With p = softmax of the three terms, grad r = sum_j p_j u_j and
    Hess r = sum_j p_j u_j u_j^T - grad r grad r^T (u_j: d term_j / d theta), so
    Hess f = sum_i [h''(r_i) - h'(r_i)] grad r_i grad r_i^T + h'(r_i) sum_j p_ij u_ij u_ij^T.
    """
    r, p1, p2, p3 = _softmax_terms(theta, log_n, log_d, log_l)
    absr = np.abs(r)
    inside = absr <= delta
    h = np.where(inside, 0.5 * r * r, delta * (absr - 0.5 * delta))
    dh = np.clip(r, -delta, delta)
    d2h = inside.astype(np.float64)
    if weights is not None:
        h = h * weights
        dh = dh * weights
        d2h = d2h * weights
    grad_r = np.stack([p1, p2, p3, -p1 * log_n, -p2 * log_d], axis=-1)  # (K, n, 5)
    # Batched matrix products (BLAS) rather than einsum: this is the refits' second-largest cost.
    grad = np.matmul(dh[:, None, :], grad_r)[:, 0, :]
    hess = np.matmul((grad_r * (d2h - dh)[..., None]).transpose(0, 2, 1), grad_r)
    q1 = dh * p1
    q2 = dh * p2
    hess[:, 0, 0] += q1.sum(axis=1)
    hess[:, 1, 1] += q2.sum(axis=1)
    hess[:, 2, 2] += (dh * p3).sum(axis=1)
    hess[:, 0, 3] -= q1 @ log_n
    hess[:, 3, 0] = hess[:, 0, 3]
    hess[:, 3, 3] += q1 @ (log_n * log_n)
    hess[:, 1, 4] -= q2 @ log_d
    hess[:, 4, 1] = hess[:, 1, 4]
    hess[:, 4, 4] += q2 @ (log_d * log_d)
    return np.asarray(h.sum(axis=1)), grad, hess
