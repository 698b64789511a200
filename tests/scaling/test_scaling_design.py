"""The run planner: seed design, active design, duplicates, errors, JSON."""

from __future__ import annotations

import json

import numpy as np
import pytest

from service.scaling import (
    Chinchilla,
    FitResult,
    InsufficientBudgetError,
    InsufficientRunsError,
    InvalidArgumentError,
    InvalidBudgetError,
    Plan,
    RunArrays,
    fit,
    plan_runs,
    preset,
    simulate_loss,
)
from service.scaling.design_info import log_nopt
from service.scaling.shape_family import ShapeFamily
from tests.scaling.scaling_synth import chinchilla_preset

TRUTH = chinchilla_preset("epoch-2024")
EMPTY = RunArrays.from_arrays([], [], [])
TARGET = 1e24


def _arrays(plan: Plan) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    N = np.array([r.params for r in plan.runs])
    D = np.array([r.tokens for r in plan.runs])
    return N, D, np.array([r.flops for r in plan.runs])


def _extend(runs: RunArrays, plan: Plan, rng: np.random.Generator) -> RunArrays:
    N, D, _ = _arrays(plan)
    L = simulate_loss(TRUTH, N, D, 0.01, rng)
    return RunArrays.from_arrays(np.r_[runs.params, N], np.r_[runs.tokens, D], np.r_[runs.loss, L])


def _no_pair_within(a: np.ndarray, b: np.ndarray, tol: float = 0.02) -> bool:
    """No row of a (log N, log D) lies within ``tol`` of a row of b in both columns."""
    if a.size == 0 or b.size == 0:
        return True
    close = (np.abs(a[:, None, :] - b[None, :, :]) <= np.log1p(tol)).all(axis=2)
    return not bool(close.any())


def test_seed_design_shape() -> None:
    plan = plan_runs(EMPTY, None, TARGET, budget_left=1e24, max_flops_per_run=1e22)
    assert plan.phase == "seed"
    N, D, C = _arrays(plan)
    np.testing.assert_allclose(C, 6 * N * D, rtol=1e-12)
    budgets = np.unique(np.round(np.log10(C), 6))
    assert budgets.size >= 3
    np.testing.assert_allclose(np.diff(budgets), 1.0, atol=1e-6)  # a decade apart
    assert C.max() <= 1e22 * (1 + 1e-9)
    assert C.max() == pytest.approx(1e22)  # enough budget: the largest is the max per run
    assert plan.total_flops == pytest.approx(C.sum())
    assert plan.total_flops <= 0.5 * 1e24
    for b in budgets:
        at = np.isclose(np.log10(C), b)
        assert 5 <= at.sum() <= 7
        x = np.sort(np.log(N[at]))
        n_opt = TRUTH.G * (10.0**b / 6.0) ** TRUTH.a  # the default prior is epoch-2024
        wanted = np.log(n_opt) + np.linspace(-np.log(4), np.log(4), 5)
        # each size is the family's shape nearest its place (a ladder step is < 1.4x here)
        assert np.all(np.abs(x - wanted) < np.log(1.4))
        assert np.unique(x).size == x.size
    family = ShapeFamily()
    for r in plan.runs:
        assert r.shape == family.snap(r.params)  # a buildable shape, counted exactly
        assert r.shape.params == r.params
        assert r.reason
    assert plan.sd_before is None
    assert 0 < plan.sd_after < 5


def test_seed_drops_largest_budgets_to_fit_the_budget() -> None:
    plan = plan_runs(EMPTY, None, TARGET, budget_left=1e22, max_flops_per_run=1e22)
    _, _, C = _arrays(plan)
    assert np.unique(np.round(np.log10(C), 6)).tolist() == [18.0, 19.0, 20.0]
    assert plan.total_flops <= 0.5 * 1e22


def test_seed_follows_the_fit_law_or_prior() -> None:
    prior = preset("chinchilla-2022").law
    plan = plan_runs(EMPTY, None, TARGET, 1e24, 1e21, prior=prior, n_sizes=7)
    N, _, C = _arrays(plan)
    at = np.isclose(C, 1e21)
    assert at.sum() == 7
    assert isinstance(prior, Chinchilla)
    assert np.median(N[at]) == pytest.approx(prior.G * (1e21 / 6) ** prior.a, rel=0.2)


@pytest.fixture(scope="module")
def seeded() -> tuple[RunArrays, FitResult, Plan]:
    seed_plan = plan_runs(EMPTY, None, TARGET, 1e23, 1e22)
    runs = _extend(EMPTY, seed_plan, np.random.default_rng(0))
    return runs, fit(runs, holdout=False, bootstrap=50), seed_plan


def test_active_plan_reduces_predicted_uncertainty(
    seeded: tuple[RunArrays, FitResult, Plan],
) -> None:
    runs, result, _ = seeded
    plan = plan_runs(runs, result, TARGET, budget_left=2e22, max_flops_per_run=1e22, batch_size=6)
    assert plan.phase == "active"
    assert 0 < len(plan.runs) <= 6
    assert plan.sd_before is not None
    assert plan.sd_after < plan.sd_before
    _, _, C = _arrays(plan)
    assert C.max() <= 1e22 * (1 + 1e-9)
    assert plan.total_flops <= 2e22
    assert all(r.gain > 0 and r.variance_drop > 0 for r in plan.runs)
    assert any("bootstrap" in n for n in plan.notes)


def test_no_duplicates_of_runs_or_queued_jobs(seeded: tuple[RunArrays, FitResult, Plan]) -> None:
    runs, result, _ = seeded
    # Runs done 1% off the seed design: the seed is not proposed again.
    near = RunArrays.from_arrays(runs.params * 1.01, runs.tokens * 0.99, runs.loss)
    again = plan_runs(near, None, TARGET, 1e23, 1e22)
    assert len(again.runs) == 0
    assert any("already done or queued" in n for n in again.notes)
    first = plan_runs(runs, result, TARGET, 1e23, 1e22, batch_size=6)
    queued = [(r.params, r.tokens) for r in first.runs]
    second = plan_runs(runs, result, TARGET, 1e23, 1e22, taken=queued, batch_size=6)
    done = np.log(np.column_stack([runs.params, runs.tokens]))
    a = np.log(np.column_stack(_arrays(first)[:2]))
    b = np.log(np.column_stack(_arrays(second)[:2]))
    assert _no_pair_within(a, done)
    assert _no_pair_within(b, done)
    assert _no_pair_within(b, a)
    for arr in (a, b):  # nor within one plan
        close = (np.abs(arr[:, None] - arr[None]) <= np.log1p(0.02)).all(axis=2)
        assert close.sum() == arr.shape[0]


def test_active_rounds_shrink_the_actual_error() -> None:
    """Seed sweep, then three active batches with refits: |log N_opt error| falls on average."""
    before, after = [], []
    for s in range(6):
        rng = np.random.default_rng(100 + s)
        runs = _extend(EMPTY, plan_runs(EMPTY, None, TARGET, 1e23, 1e22), rng)
        result = fit(runs, holdout=False)
        before.append(abs(log_nopt(result.law, TARGET) - log_nopt(TRUTH, TARGET)))  # type: ignore[arg-type]
        for _ in range(3):
            plan = plan_runs(runs, result, TARGET, 4e22, 1e22, batch_size=8)
            runs = _extend(runs, plan, rng)
            result = fit(runs, holdout=False)
        after.append(abs(log_nopt(result.law, TARGET) - log_nopt(TRUTH, TARGET)))  # type: ignore[arg-type]
    assert np.mean(after) < np.mean(before)
    assert np.median(after) < np.median(before)


def test_degenerate_inputs_raise_typed_errors() -> None:
    with pytest.raises(InvalidBudgetError, match="target_flops"):
        plan_runs(EMPTY, None, 0.0, 1e23, 1e22)
    with pytest.raises(InvalidBudgetError, match="budget_left"):
        plan_runs(EMPTY, None, 1e24, -1.0, 1e22)
    with pytest.raises(InvalidBudgetError, match="max_flops_per_run"):
        plan_runs(EMPTY, None, 1e24, 1e23, float("nan"))
    with pytest.raises(InsufficientBudgetError, match="max_flops_per_run") as exc:
        plan_runs(EMPTY, None, 1e24, 1e23, 1e12)
    assert exc.value.code == "insufficient_budget"
    with pytest.raises(InsufficientBudgetError, match="seed of 3 budgets") as exc2:
        plan_runs(EMPTY, None, 1e24, 1e16, 1e22)
    assert exc2.value.details["have_name"] == "budget_left"
    with pytest.raises(InsufficientBudgetError, match="3 budgets a decade apart") as exc3:
        plan_runs(EMPTY, None, 1e24, 1e30, 1e16)  # too small a max for three decades
    assert exc3.value.details["have_name"] == "max_flops_per_run"
    with pytest.raises(InvalidArgumentError, match="half_width"):
        plan_runs(EMPTY, None, 1e24, 1e23, 1e22, half_width=0.0)
    with pytest.raises(InvalidArgumentError, match="5 to 7 sizes"):
        plan_runs(EMPTY, None, 1e24, 1e23, 1e22, n_sizes=3)


def test_plan_json_round_trip(seeded: tuple[RunArrays, FitResult, Plan]) -> None:
    runs, result, seed_plan = seeded
    active = plan_runs(runs, result, TARGET, 1e23, 1e22, batch_size=4)
    for plan in (seed_plan, active):
        data = json.loads(json.dumps(plan.to_json()))
        assert Plan.from_json(data) == plan
        assert data["phase"] in ("seed", "active")
        assert {"params", "tokens", "flops", "shape", "gain", "reason"} <= set(data["runs"][0])


def test_simulate_loss() -> None:
    N, D = np.full(4000, 1e9), np.full(4000, 2e10)
    exact = TRUTH.predict(N, D)
    np.testing.assert_array_equal(simulate_loss(TRUTH, N, D, 0.0, np.random.default_rng(0)), exact)
    noisy = simulate_loss(TRUTH, N, D, 0.01, np.random.default_rng(0))
    assert np.std(np.log(noisy / exact)) == pytest.approx(0.01, rel=0.1)


def test_overhead_prefers_fewer_larger_runs(seeded: tuple[RunArrays, FitResult, Plan]) -> None:
    runs, result, _ = seeded
    cheap = plan_runs(runs, result, TARGET, 1e23, 1e22, batch_size=6)
    costly = plan_runs(runs, result, TARGET, 1e23, 1e22, batch_size=6, overhead_flops=1e21)
    assert np.mean(_arrays(costly)[2]) > np.mean(_arrays(cheap)[2])
    assert costly.runs[0].gain == pytest.approx(
        costly.runs[0].variance_drop / (costly.runs[0].flops + 1e21)
    )


def test_a_frontier_fit_gets_a_seed_around_its_frontier(
    seeded: tuple[RunArrays, FitResult, Plan],
) -> None:
    runs, _, _ = seeded
    iso = fit(runs, method="isoflop", holdout=False)
    plan = plan_runs(runs, iso, TARGET, 1e24, 1e21, seed_budgets=4)
    assert plan.phase == "seed"
    assert any("cannot be used for active planning" in n for n in plan.notes)
    N, _, C = _arrays(plan)
    at = np.isclose(C, 1e18)
    assert np.median(N[at]) == pytest.approx(float(iso.law.params(1e18)), rel=0.2)  # type: ignore[union-attr]


BYTES = ShapeFamily(vocab_size=256, context_tokens=64, min_tokens=256 * 64)


def test_tiny_seed_has_five_distinct_buildable_shapes_per_budget() -> None:
    plan = plan_runs(EMPTY, None, 1e15, 2e13, 1e12, min_run_flops=1e9, family=BYTES)
    N, D, C = _arrays(plan)
    assert np.unique(np.round(np.log10(C), 6)).tolist() == [10.0, 11.0, 12.0]
    for budget in (1e10, 1e11, 1e12):
        at = np.isclose(C, budget)
        assert np.unique(N[at]).size == at.sum() == 5
    assert np.all(BYTES.min_tokens <= D)
    pairs = {(r.params, round(r.tokens)) for r in plan.runs}
    assert len(pairs) == len(plan.runs)
    for r in plan.runs:
        assert r.shape == BYTES.snap(r.params)
        assert r.params == r.shape.params


def test_seed_min_run_rises_to_fit_five_shapes() -> None:
    # The fifth-smallest byte-level shape (97,520 params) on 16,384 tokens needs 9.6e9 FLOPs.
    with pytest.raises(InsufficientBudgetError, match="distinct model shapes"):
        plan_runs(EMPTY, None, 1e14, 2e12, 1e11, min_run_flops=1e9, family=BYTES)


def test_widened_seed_adds_sizes_and_budgets_without_repeats() -> None:
    seed = plan_runs(EMPTY, None, 1e15, 2e13, 1e12, min_run_flops=1e9, family=BYTES)
    runs = _extend(EMPTY, seed, np.random.default_rng(3))
    wide = plan_runs(runs, None, 1e15, 1.4e13, 1e12, min_run_flops=1e9, family=BYTES, widen=1)
    assert wide.phase == "seed" and any("widened" in n for n in wide.notes)
    N, D, C = _arrays(wide)
    budgets = np.unique(np.round(np.log10(C), 6))
    assert budgets.size == 3 and np.all(~np.isin(budgets, [10.0, 11.0, 12.0]))  # new budgets
    for b in budgets:
        assert np.unique(N[np.isclose(np.log10(C), b)]).size == 7
    assert np.log(N.max() / N.min()) > np.log(runs.params.max() / runs.params.min())
    assert wide.total_flops <= 1.4e13
    done = np.log(np.column_stack([runs.params, runs.tokens]))
    assert _no_pair_within(np.log(np.column_stack([N, D])), done)


def test_active_candidates_are_buildable_shapes(seeded: tuple[RunArrays, FitResult, Plan]) -> None:
    runs, result, _ = seeded
    plan = plan_runs(runs, result, TARGET, 2e22, 1e22, batch_size=6)
    family = ShapeFamily()
    assert plan.runs
    for r in plan.runs:
        assert r.shape == family.snap(r.params) and r.params == r.shape.params


def test_larger_overhead_plans_fewer_larger_runs_within_the_budget(
    seeded: tuple[RunArrays, FitResult, Plan],
) -> None:
    runs, result, _ = seeded
    counts, means = [], []
    for overhead in (0.0, 1e20, 1e21):
        plan = plan_runs(runs, result, TARGET, 2e22, 1e22, batch_size=100, overhead_flops=overhead)
        assert plan.overhead_flops == overhead
        assert plan.cost_flops == pytest.approx(plan.total_flops + len(plan.runs) * overhead)
        assert plan.cost_flops <= 2e22 * (1 + 1e-9)  # the overhead is paid from the budget
        counts.append(len(plan.runs))
        means.append(plan.total_flops / len(plan.runs))
    assert counts[0] > counts[1] > counts[2] >= 1
    assert means[0] < means[1] < means[2]


def test_seed_pays_the_overhead_from_its_share() -> None:
    # 5 sizes x (1e20 + 1e21 + 1e22) = 5.55e22 fits half of 1.2e23, not with 1e21 per run on top.
    free = plan_runs(EMPTY, None, TARGET, 1.2e23, 1e22)
    costly = plan_runs(EMPTY, None, TARGET, 1.2e23, 1e22, overhead_flops=1e21)
    assert max(r.flops for r in free.runs) == pytest.approx(1e22)
    assert max(r.flops for r in costly.runs) == pytest.approx(1e21)
    assert costly.cost_flops <= 0.5 * 1.2e23
    assert Plan.from_json(json.loads(json.dumps(costly.to_json()))) == costly


def test_a_run_cap_plans_fewer_larger_runs_within_the_cap(
    seeded: tuple[RunArrays, FitResult, Plan],
) -> None:
    runs, result, _ = seeded
    free = plan_runs(runs, result, TARGET, 1e23, 1e22, batch_size=8)
    capped = plan_runs(runs, result, TARGET, 1e23, 1e22, batch_size=8, max_runs=20)
    assert len(free.runs) == len(capped.runs) == 8
    # Each run slot is worth 1e23 / 20 FLOPs: the capped plan spends more per run.
    assert np.mean(_arrays(capped)[2]) > 3 * np.mean(_arrays(free)[2])
    assert capped.cost_flops <= 1e23 * (1 + 1e-9)
    assert any("run cap: 20 run(s) left" in note for note in capped.notes)
    # The reported gain stays the information per FLOP (plus overhead) of the run itself.
    first = capped.runs[0]
    assert first.gain == pytest.approx(first.variance_drop / first.flops)
    few = plan_runs(runs, result, TARGET, 1e23, 1e22, batch_size=8, max_runs=3)
    assert len(few.runs) == 3


def test_a_seed_needs_its_runs_under_the_cap() -> None:
    plan = plan_runs(EMPTY, None, TARGET, 1e24, 1e22, max_runs=15)
    assert plan.phase == "seed" and len(plan.runs) == 15
    with pytest.raises(InsufficientRunsError) as exc:
        plan_runs(EMPTY, None, TARGET, 1e24, 1e22, max_runs=14)
    assert exc.value.code == "insufficient_runs"
    assert "need 15, max_runs is 14" in str(exc.value)
    with pytest.raises(InsufficientRunsError, match="need 21"):
        plan_runs(EMPTY, None, TARGET, 1e24, 1e22, max_runs=20, widen=1)
    with pytest.raises(InvalidArgumentError, match="max_runs"):
        plan_runs(EMPTY, None, TARGET, 1e24, 1e22, max_runs=0)
