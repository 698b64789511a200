"""Fitting: recovery of random ground truths, bootstrap, diagnostics, serialisation."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.scaling import (
    Chinchilla,
    DataConstrained,
    FitResult,
    FlopBudget,
    Kaplan,
    RunArrays,
    fit,
    optimum_at_flops,
    preset,
    recommend,
)
from service.scaling.allocate import Constraints
from tests.scaling.scaling_synth import isoflop_sweep


@st.composite
def laws(draw: st.DrawFn) -> Chinchilla:
    """Random laws whose reducible terms are visible above the noise in the swept range:
    A / N^alpha is 0.1-1 nats at N = 1e9 and B / D^beta is 0.1-1 nats at D = 2e10."""
    alpha, beta = draw(st.floats(0.25, 0.5)), draw(st.floats(0.25, 0.5))
    return Chinchilla(
        E=draw(st.floats(1.5, 2.5)),
        A=draw(st.floats(0.1, 1.0)) * 1e9**alpha,
        B=draw(st.floats(0.1, 1.0)) * 2e10**beta,
        alpha=alpha,
        beta=beta,
    )


BUDGETS = np.geomspace(1e18, 3e21, 7)


# derandomize: the same draws on every run. Recovery within these tolerances is a statistical
# claim (a rare draw is not identifiable from 0.3% noise), so CI checks fixed draws rather than
# failing at random; widen `laws()` or the examples here to explore.
@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
)
@given(truth=laws(), seed=st.integers(0, 2**31 - 1))
def test_parametric_recovers_random_ground_truth(truth: Chinchilla, seed: int) -> None:
    rng = np.random.default_rng(seed)
    runs = isoflop_sweep(truth, BUDGETS, noise=0.003, rng=rng)
    res = fit(runs, holdout=False)
    est = res.law
    assert isinstance(est, Chinchilla)
    assert pytest.approx(truth.E, abs=0.1) == est.E
    assert est.alpha == pytest.approx(truth.alpha, abs=0.06)
    assert est.beta == pytest.approx(truth.beta, abs=0.06)
    assert est.a == pytest.approx(truth.a, abs=0.03)
    # Allocation at 10x the largest budget within 25%.
    C = 3e22
    got, want = optimum_at_flops(est, C, Constraints()), optimum_at_flops(truth, C, Constraints())
    assert got.params == pytest.approx(want.params, rel=0.25)
    assert got.loss == pytest.approx(want.loss, rel=0.01)
    # Our optimum is at least as good as the truth's own parameters.
    r = np.log(truth.predict(runs.params, runs.tokens) / runs.loss)
    truth_objective = np.where(np.abs(r) <= 1e-3, 0.5 * r**2, 1e-3 * (np.abs(r) - 5e-4)).sum()
    assert res.objective <= truth_objective + 1e-12


@settings(max_examples=8, deadline=None, derandomize=True)  # as above
@given(truth=laws(), seed=st.integers(0, 2**31 - 1))
def test_isoflop_recovers_allocation_exponent(truth: Chinchilla, seed: int) -> None:
    rng = np.random.default_rng(seed)
    runs = isoflop_sweep(truth, BUDGETS, noise=0.002, rng=rng)
    res = fit(runs, method="isoflop")
    assert res.law.values()[1] == pytest.approx(truth.a, abs=0.04)
    # Every budget is used, or dropped with its reason and a warning that says so (a budget
    # whose sizes miss its minimum by far, as hypothesis can draw, is dropped).
    assert len(res.budgets) + len(res.dropped_budgets) == BUDGETS.size
    assert len(res.budgets) >= BUDGETS.size - 1
    assert all(d.reason for d in res.dropped_budgets)
    assert bool(res.dropped_budgets) == any("dropped" in w for w in res.warnings)
    again = FitResult.from_json(json.loads(json.dumps(res.to_json())))
    assert again == res


@pytest.mark.slow
def test_bootstrap_intervals_cover_truth_at_about_nominal_rate() -> None:
    truth = preset("epoch-2024").law
    assert isinstance(truth, Chinchilla)
    hits, trials = {"alpha": 0, "beta": 0, "a": 0}, 40
    for k in range(trials):
        rng = np.random.default_rng(1000 + k)
        runs = isoflop_sweep(truth, np.geomspace(1e18, 1e21, 5), n_sizes=7, noise=0.01, rng=rng)
        iv = fit(runs, bootstrap=300, seed=k, holdout=False).intervals(confidence=0.9)
        for name in hits:
            want = getattr(truth, name)
            hits[name] += iv[name][0] <= want <= iv[name][1]
    for name, h in hits.items():
        # Nominal 90%; percentile bootstrap with 35 runs under-covers a little.
        assert 0.7 <= h / trials <= 1.0, (name, h)


def test_bootstrap_is_seeded_and_reports_progress(epoch_runs: RunArrays) -> None:
    seen: list[float] = []
    a = fit(epoch_runs, bootstrap=300, seed=7, progress=seen.append, holdout=False)
    b = fit(epoch_runs, bootstrap=300, seed=7, holdout=False)
    c = fit(epoch_runs, bootstrap=300, seed=8, holdout=False)
    assert a.bootstrap_samples == b.bootstrap_samples
    assert a.bootstrap_samples != c.bootstrap_samples
    assert seen
    assert seen[-1] == pytest.approx(1.0)
    assert all(x <= y for x, y in itertools.pairwise(seen))
    assert a.samples.shape == (300, 5)


def test_fit_round_trips_through_json_with_samples(epoch_runs: RunArrays) -> None:
    res = fit(epoch_runs, bootstrap=50, seed=1)
    again = FitResult.from_json(json.loads(json.dumps(res.to_json())))
    assert again == res
    assert again.intervals(confidence=0.9) == res.intervals(confidence=0.9)
    # A stored fit gives allocation intervals without refitting.
    alloc = recommend(again, FlopBudget(1e23))
    assert alloc.intervals["params"][0] < alloc.params < alloc.intervals["params"][1]


def test_outliers_are_flagged_not_dropped() -> None:
    truth = preset("chinchilla-2022").law
    assert isinstance(truth, Chinchilla)
    rng = np.random.default_rng(5)
    runs = isoflop_sweep(truth, BUDGETS, noise=0.002, rng=rng)
    loss = runs.loss.copy()
    loss[10] *= 1.3
    res = fit(RunArrays.from_arrays(runs.params, runs.tokens, loss))
    assert res.outliers == (10,)
    assert res.n_runs == len(runs)
    assert any("outlier" in w for w in res.warnings)
    # Huber keeps the estimate close to the truth despite the outlier.
    assert res.estimates["alpha"] == pytest.approx(truth.alpha, abs=0.03)


def test_goodness_of_fit_reports_extrapolation_error(epoch_runs: RunArrays) -> None:
    res = fit(epoch_runs)
    assert res.extrapolation_error is not None and res.rmse_log_loss is not None
    assert 0 < res.rmse_log_loss < res.extrapolation_error < 0.1
    assert res.max_flops == pytest.approx(epoch_runs.flops.max())


def test_kaplan_fit_recovers_its_law() -> None:
    truth = Kaplan(N_c=8.8e13, D_c=5.4e13, alpha_N=0.076, alpha_D=0.095)
    rng = np.random.default_rng(2)
    N = np.repeat(np.geomspace(1e6, 1e9, 8), 6)
    D = np.tile(np.geomspace(1e8, 1e11, 6), 8)
    L = truth.predict(N, D) * np.exp(rng.normal(0, 0.002, N.size))
    res = fit(RunArrays.from_arrays(N, D, L), law="kaplan")
    est = res.law
    assert isinstance(est, Kaplan)
    assert est.alpha_N == pytest.approx(truth.alpha_N, abs=0.01)
    assert est.alpha_D == pytest.approx(truth.alpha_D, abs=0.01)
    np.testing.assert_allclose(est.predict(N, D), truth.predict(N, D), rtol=0.01)


def test_data_constrained_fit_recovers_repetition_half_life() -> None:
    truth = preset("muennighoff-2023").law
    assert isinstance(truth, DataConstrained)
    rng = np.random.default_rng(3)
    N, D, U = [], [], []
    for n in np.geomspace(1e8, 3e9, 6):
        for d in np.geomspace(2e9, 2e11, 6):
            for epochs in (1, 4, 16, 60):
                N.append(n)
                D.append(d)
                U.append(d / epochs)
    N_a, D_a, U_a = np.array(N), np.array(D), np.array(U)
    L = truth.predict(N_a, D_a, unique_tokens=U_a) * np.exp(rng.normal(0, 0.002, N_a.size))
    res = fit(RunArrays.from_arrays(N_a, D_a, L, unique_tokens=U_a), law="data_constrained")
    est = res.law
    assert isinstance(est, DataConstrained)
    assert est.R_D_star == pytest.approx(truth.R_D_star, rel=0.3)
    np.testing.assert_allclose(
        est.predict(N_a, D_a, unique_tokens=U_a),
        truth.predict(N_a, D_a, unique_tokens=U_a),
        rtol=0.01,
    )


def test_envelope_recovers_allocation_exponent_from_loss_curves() -> None:
    truth = preset("epoch-2024").law
    assert isinstance(truth, Chinchilla)
    sizes = np.geomspace(5e7, 2e10, 16)
    N, D, rid = [], [], []
    for i, n in enumerate(sizes):
        for d in np.geomspace(1e9, 2e12, 80):
            N.append(n)
            D.append(d)
            rid.append(i)
    N_a, D_a = np.array(N), np.array(D)
    runs = RunArrays.from_arrays(N_a, D_a, truth.predict(N_a, D_a), run_id=rid)
    res = fit(runs, method="envelope", bootstrap=20, seed=0)
    assert res.law.values()[1] == pytest.approx(truth.a, abs=0.06)
    assert res.samples.shape[1] == 7  # k_N, a, k_D, b, k_L, gamma, E
    again = FitResult.from_json(json.loads(json.dumps(res.to_json())))
    assert again == res


def test_isoflop_warns_about_lopsided_and_edge_budgets() -> None:
    truth = preset("chinchilla-2022").law
    assert isinstance(truth, Chinchilla)
    N, D = [], []
    for i, C in enumerate(BUDGETS):
        n_opt = truth.G * (C / 6) ** truth.a
        # Budget 0: sizes all above the optimum; budget 1: lopsided; others symmetric.
        shift = {0: 1.5, 1: 0.7}.get(i, 0.0)
        for x in np.linspace(-1, 1, 7) + shift:
            N.append(n_opt * np.exp(x))
            D.append(C / (6 * N[-1]))
    N_a, D_a = np.array(N), np.array(D)
    res = fit(RunArrays.from_arrays(N_a, D_a, truth.predict(N_a, D_a)), method="isoflop")
    text = " ".join(res.warnings)
    assert "outside the sampled sizes" in text
    assert "not symmetric" in text
    assert sum("FLOPs:" in w for w in res.warnings) == 2


def test_isoflop_on_published_sweeps_and_frontier_allocation() -> None:
    from service.io.runs_csv import parse_runs_csv
    from tests.scaling.conftest import DATA

    parsed = parse_runs_csv((DATA / "openathena_isoflops_extract.csv").read_text())
    a_values = {}
    for experiment in parsed.experiments():
        res = fit(parsed.to_runs(experiment), method="isoflop")
        a_values[experiment] = res.estimates["a"]
        alloc = recommend(res, FlopBudget(1e22))
        assert alloc.flops == pytest.approx(1e22)
        assert alloc.params == pytest.approx(res.law.values()[0] * 1e22 ** res.estimates["a"])
    # Published Chinchilla IsoFLOP data give a ~ 0.5 (Hoffmann et al. Approach 2: 0.49).
    assert 0.45 < a_values["epochai_chinchilla__massivetext__chinchilla"] < 0.6
    assert all(0.3 < a < 0.7 for a in a_values.values())
