"""Runs with several points in the planner: costed as trained, their correlated points worth
more than one point and less than as many independent runs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from service.scaling import FitResult, Plan, RunArrays, fit, plan_runs
from service.scaling.branches import (
    point_covariance,
    simulate_trunk_losses,
    trained_flops,
    trained_tokens,
)
from service.scaling.design_info import (
    add_block,
    add_run,
    block_drops,
    covariance,
    log_loss_jacobian,
    log_nopt_gradient,
    variance_drops,
)
from service.scaling.errors import InvalidArgumentError
from tests.scaling.scaling_synth import chinchilla_preset
from tests.scaling.test_scaling_design import EMPTY, TARGET, _extend

TRUTH = chinchilla_preset("epoch-2024")
SIGMA = 0.01


def test_trained_tokens_count_the_trunk_once_and_every_cooldown() -> None:
    assert trained_tokens([100.0], 0.2) == 100.0
    assert trained_tokens([25.0, 50.0, 100.0], 0.2) == pytest.approx(100.0 + 0.2 * 75.0)
    assert trained_flops(1e6, [50.0, 100.0], 0.2) == pytest.approx(6e6 * 110.0)


def test_block_information_matches_independent_runs_without_correlation() -> None:
    sig = covariance(TRUTH, [1e8, 3e8, 1e9], [1e10, 3e9, 1e9], SIGMA)
    g = log_nopt_gradient(TRUTH, TARGET)
    J = log_loss_jacobian(TRUTH, [2e8, 2e8, 2e8], [1e9, 2e9, 4e9])
    independent = sig
    for row in J:
        independent = add_run(independent, row, SIGMA)
    R0 = point_covariance(3, SIGMA, 0.0)
    np.testing.assert_allclose(add_block(sig, J, R0), independent, rtol=1e-8, atol=1e-14)
    drop = block_drops(sig, g, J[None], R0)[0]
    assert drop == pytest.approx(g @ sig @ g - g @ independent @ g, rel=1e-6)
    # One point: the block formula is the single-run one.
    one = block_drops(sig, g, J[:1][None], point_covariance(1, SIGMA, 0.5))[0]
    assert one == pytest.approx(variance_drops(sig, g, J[:1], SIGMA)[0])


def test_correlated_points_say_less_about_their_level_and_more_about_their_slope() -> None:
    """A shared trunk error shifts every point alike: k points pin their common level only as
    well as k / (1 + (k - 1) rho) independent runs would, while their differences (the slope
    in D) are sharper, as paired measurements are."""
    J = log_loss_jacobian(TRUTH, [2e8, 2e8, 2e8], [1e9, 2e9, 4e9])
    level = np.array([1.0, 1.0, 1.0, 0.0, 0.0])  # d log L: the same shift at every point
    np.testing.assert_allclose(J @ level, 1.0)
    for rho in (0.0, 0.5, 0.9):
        info = J.T @ np.linalg.inv(point_covariance(3, SIGMA, rho)) @ J
        assert level @ info @ level == pytest.approx(3 / (1 + 2 * rho) / SIGMA**2)
    slope = J[2] - J[0]  # a change in the shape along D, not the level
    infos = [J.T @ np.linalg.inv(point_covariance(3, SIGMA, rho)) @ J for rho in (0.0, 0.5)]
    sd = [np.sqrt(slope @ np.linalg.inv(info + np.eye(5)) @ slope) for info in infos]
    assert sd[1] < sd[0]


def test_stored_trunks_are_grouped_in_the_information() -> None:
    params, tokens = [2e8, 2e8, 1e9], [1e9, 2e9, 3e9]
    alone = covariance(TRUTH, params, tokens, SIGMA)
    singletons = covariance(TRUTH, params, tokens, SIGMA, groups=[0, 1, 2], trunk_correlation=0.5)
    np.testing.assert_allclose(singletons, alone, rtol=1e-10)
    trunk = covariance(TRUTH, params, tokens, SIGMA, groups=[0, 0, 1], trunk_correlation=0.5)
    J = log_loss_jacobian(TRUTH, params, tokens)
    prior = covariance(TRUTH, [], [], SIGMA)
    expected = add_run(add_block(prior, J[:2], point_covariance(2, SIGMA, 0.5)), J[2], SIGMA)
    np.testing.assert_allclose(trunk, expected, rtol=1e-8, atol=1e-14)
    assert not np.allclose(trunk, alone, rtol=1e-3)


def test_trunk_losses_follow_the_law_with_shared_noise() -> None:
    rng = np.random.default_rng(1)
    branches = [1e9, 2e9, 4e9]
    clean = TRUTH.predict([3e8] * 3, branches)
    eps = np.log(
        [simulate_trunk_losses(TRUTH, 3e8, branches, 0.02, 0.5, rng) / clean for _ in range(3000)]
    )
    assert np.std(eps, axis=0) == pytest.approx([0.02] * 3, rel=0.1)
    assert np.corrcoef(eps.T)[0, 2] == pytest.approx(0.5, abs=0.07)
    np.testing.assert_array_equal(simulate_trunk_losses(TRUTH, 3e8, branches, 0, 0.5, rng), clean)


@pytest.fixture(scope="module")
def seeded() -> tuple[RunArrays, FitResult]:
    runs = _extend(EMPTY, plan_runs(EMPTY, None, TARGET, 1e23, 1e22), np.random.default_rng(0))
    return runs, fit(runs, holdout=False, bootstrap=20)


def test_one_branch_plans_as_before(seeded: tuple[RunArrays, FitResult]) -> None:
    runs, result = seeded
    plan = plan_runs(runs, result, TARGET, 2e22, 1e22, batch_size=6, max_branches=1)
    assert all(run.branch_tokens == () and run.cooldown_fraction is None for run in plan.runs)
    assert all(run.flops == pytest.approx(6 * run.params * run.tokens) for run in plan.runs)


def test_several_point_runs_are_costed_as_trained_and_fit_the_budget(
    seeded: tuple[RunArrays, FitResult],
) -> None:
    runs, result = seeded
    one = plan_runs(runs, result, TARGET, 2e22, 1e22, batch_size=6, overhead_flops=1e18)
    plan = plan_runs(
        runs, result, TARGET, 2e22, 1e22, batch_size=6, overhead_flops=1e18, max_branches=3
    )
    several = [run for run in plan.runs if run.branch_tokens]
    assert several, "no several-point run chosen"
    for run in several:
        assert 2 <= len(run.branch_tokens) <= 3
        assert run.branch_tokens[-1] == run.tokens
        assert np.all(np.diff(run.branch_tokens) > 0)
        assert run.cooldown_fraction == 0.2
        assert run.flops == pytest.approx(trained_flops(run.params, run.branch_tokens, 0.2))
        assert run.gain == pytest.approx(run.variance_drop / (run.flops + 1e18))
    assert plan.total_flops == pytest.approx(sum(run.flops for run in plan.runs))
    assert plan.cost_flops <= 2e22 * (1 + 1e-9)
    # The choice includes one-point runs: it can only predict as well or better per batch.
    assert plan.sd_after <= one.sd_after * (1 + 1e-6)
    assert Plan.from_json(json.loads(json.dumps(plan.to_json()))) == plan


def test_branch_options_are_checked(seeded: tuple[RunArrays, FitResult]) -> None:
    runs, result = seeded
    for bad in ({"max_branches": 0}, {"cooldown_fraction": 0.0}, {"trunk_correlation": 1.0}):
        with pytest.raises(InvalidArgumentError):
            plan_runs(runs, result, TARGET, 2e22, 1e22, **bad)
