"""The Epoch reference refit of Chinchilla's Approach 3 (shared/reference/scaling-laws.md)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize

from service.scaling import RunArrays, fit
from service.scaling.objective import chinchilla_objective

REF = {"E": 1.8172, "A": 477.8, "B": 2143.4, "alpha": 0.3473, "beta": 0.3672, "a": 0.5139}
REF_OBJECTIVE = 0.00101827


def test_reference_refit_matches(epoch_runs: RunArrays) -> None:
    assert len(epoch_runs) == 240
    res = fit(epoch_runs, law="chinchilla", method="parametric", huber_delta=1e-3)
    est = res.estimates
    for name in ("E", "alpha", "beta", "a"):
        assert abs(est[name] - REF[name]) < 0.005, name
    # A and B ride a ridge; still within 1% of the reference here.
    assert est["A"] == pytest.approx(REF["A"], rel=0.01)
    assert est["B"] == pytest.approx(REF["B"], rel=0.01)
    assert res.objective is not None and res.objective <= REF_OBJECTIVE * (1 + 1e-5)
    assert res.converged


def _paper_grid() -> np.ndarray:
    g = np.meshgrid(
        np.arange(0, 30, 5.0),  # a
        np.arange(0, 30, 5.0),  # b
        np.arange(-1, 1.5, 0.5),  # e
        np.arange(0, 2.5, 0.5),  # alpha
        np.arange(0, 2.5, 0.5),  # beta
        indexing="ij",
    )
    return np.stack([x.ravel() for x in g], axis=1)


@pytest.mark.slow
def test_no_start_of_the_paper_grid_beats_our_optimum(epoch_runs: RunArrays) -> None:
    grid = _paper_grid()
    assert grid.shape == (4500, 5)
    ln, ld, ll = np.log(epoch_runs.params), np.log(epoch_runs.tokens), np.log(epoch_runs.loss)
    ours = fit(epoch_runs, holdout=False).objective
    assert ours is not None
    rng = np.random.default_rng(1)
    best = np.inf
    for x0 in grid[rng.choice(4500, 40, replace=False)]:

        def f(x: np.ndarray) -> float:
            return float(chinchilla_objective(x[None], ln, ld, ll, 1e-3)[0])

        best = min(best, minimize(f, x0, method="L-BFGS-B").fun)
    assert ours <= best * (1 + 1e-6)


def test_bootstrap_intervals_resemble_epochs(epoch_runs: RunArrays) -> None:
    res = fit(epoch_runs, bootstrap=400, seed=3, holdout=False)
    iv = res.intervals(confidence=0.95)
    # Epoch's 95% intervals (4000 resamples): E (1.769, 1.871), alpha (0.317, 0.373),
    # beta (0.331, 0.415). Ours should overlap them closely.
    for name, (lo, hi) in {
        "E": (1.769, 1.871),
        "alpha": (0.317, 0.373),
        "beta": (0.331, 0.415),
    }.items():
        assert iv[name][0] == pytest.approx(lo, abs=0.02), name
        assert iv[name][1] == pytest.approx(hi, abs=0.02), name
        assert iv[name][0] < res.estimates[name] < iv[name][1]
