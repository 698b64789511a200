"""Synthetic sweeps for the scaling tests."""

from __future__ import annotations

import numpy as np

from service.scaling import Chinchilla, RunArrays, preset


def chinchilla_preset(name: str) -> Chinchilla:
    law = preset(name).law
    assert isinstance(law, Chinchilla)
    return law


def isoflop_sweep(
    law: Chinchilla,
    budgets: np.ndarray,
    n_sizes: int = 9,
    half_width: float = 1.2,
    noise: float = 0.0,
    rng: np.random.Generator | None = None,
) -> RunArrays:
    """Sizes symmetric in log N around the true optimum of each budget; lognormal loss noise."""
    N, D = [], []
    for C in budgets:
        n_opt = law.G * (C / 6.0) ** law.a
        for x in np.linspace(-half_width, half_width, n_sizes):
            N.append(n_opt * np.exp(x))
            D.append(C / (6.0 * N[-1]))
    N_arr, D_arr = np.array(N), np.array(D)
    L = law.predict(N_arr, D_arr)
    if noise > 0:
        assert rng is not None
        L = L * np.exp(rng.normal(0.0, noise, L.size))
    return RunArrays.from_arrays(N_arr, D_arr, L)
