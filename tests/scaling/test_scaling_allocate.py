from __future__ import annotations

import json
import warnings
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.scaling import (
    Allocation,
    Chinchilla,
    Constraints,
    FlopBudget,
    GpuHoursBudget,
    Hardware,
    InfeasibleConstraintsError,
    MoneyBudget,
    TargetLoss,
    UnknownNameError,
    UnreachableLossError,
    accelerator,
    fit,
    least_flops_for_loss,
    optimum_at_flops,
    preset,
    recommend,
    shape_for_params,
)
from service.scaling.allocate import column_percentiles, inference_optimum, tokens_for_loss
from tests.scaling.scaling_synth import chinchilla_preset, isoflop_sweep

laws = st.builds(
    Chinchilla,
    E=st.floats(1.0, 3.0),
    A=st.floats(50.0, 5000.0),
    B=st.floats(50.0, 5000.0),
    alpha=st.floats(0.15, 0.8),
    beta=st.floats(0.15, 0.8),
)
NONE = Constraints()


@settings(max_examples=60, deadline=None)
@given(law=laws, log10_c=st.floats(17.0, 27.0), k=st.floats(1.5, 1000.0))
def test_closed_form_invariants(law: Chinchilla, log10_c: float, k: float) -> None:
    C = 10.0**log10_c
    p = optimum_at_flops(law, C, NONE)
    assert 6.0 * p.params * p.tokens == pytest.approx(C, rel=1e-9)
    q = optimum_at_flops(law, k * C, NONE)
    assert q.params == pytest.approx(k**law.a * p.params, rel=1e-9)
    assert q.tokens == pytest.approx(k**law.b * p.tokens, rel=1e-9)
    # It is the minimum along C = 6ND: nearby sizes are worse.
    for f in (0.9, 1.1):
        assert float(law.predict(p.params * f, p.tokens / f)) >= p.loss - 1e-12


@settings(max_examples=40, deadline=None)
@given(law=laws, log10_c=st.floats(18.0, 26.0))
def test_target_loss_inverts_the_frontier(law: Chinchilla, log10_c: float) -> None:
    C = 10.0**log10_c
    loss = optimum_at_flops(law, C, NONE).loss
    assert least_flops_for_loss(law, loss, NONE) == pytest.approx(C, rel=1e-6)
    # The numeric path (used under constraints) agrees with the closed form.
    loose = Constraints(max_params=1e30)
    assert least_flops_for_loss(law, loss, loose) == pytest.approx(C, rel=1e-5)


def test_constraints_bind_and_cost_loss() -> None:
    law = preset("chinchilla-2022").law
    free = recommend(law, FlopBudget(1e24))
    capped = recommend(law, FlopBudget(1e24), constraints=Constraints(max_params=free.params / 4))
    assert capped.params == pytest.approx(free.params / 4)
    assert capped.flops == pytest.approx(1e24)
    assert capped.loss > free.loss
    assert capped.binding == ("max_params",)
    short = recommend(law, FlopBudget(1e24), constraints=Constraints(max_tokens=free.tokens / 3))
    assert short.tokens == pytest.approx(free.tokens / 3)
    assert short.binding == ("max_tokens",)
    with pytest.raises(InfeasibleConstraintsError):
        recommend(law, FlopBudget(1e24), constraints=Constraints(max_params=1e9, max_tokens=1e10))


@pytest.mark.parametrize("flops", [5e-324, 1.0, 5.9])
def test_a_budget_below_one_parameter_on_one_token_is_infeasible(flops: float) -> None:
    with pytest.raises(InfeasibleConstraintsError, match="below 6"):
        optimum_at_flops(preset("chinchilla-2022").law, flops, NONE)


def test_inference_demand_favours_smaller_longer_trained_models() -> None:
    law = preset("chinchilla-2022").law
    base = recommend(law, FlopBudget(1e23))
    # The loss of the compute-optimal model at 1e23 FLOPs, reached at the least lifetime cost
    # (a FLOP budget with inference tokens is read differently: see test_scaling_answers.py).
    served = recommend(law, TargetLoss(base.loss), constraints=Constraints(inference_tokens=2e13))
    assert served.loss == pytest.approx(base.loss, rel=1e-9)
    assert served.params < base.params
    assert served.tokens > base.tokens
    total = 6 * served.params * served.tokens + served.inference_flops
    assert total < base.flops + 2 * base.params * 2e13
    # Zero demand reproduces the compute-optimal point.
    p = inference_optimum(law, base.loss, Constraints(inference_tokens=0.0))
    assert p.params == pytest.approx(base.params, rel=1e-4)


def test_tokens_for_loss_inverts_the_law() -> None:
    for name in ("chinchilla-2022", "kaplan-2020", "muennighoff-2023"):
        law = preset(name).law
        D = tokens_for_loss(law, 1e9, float(law.predict(1e9, 3e10)), NONE)
        assert pytest.approx(3e10, rel=1e-6) == D, name


def test_unique_tokens_limit_repetition() -> None:
    dc = preset("muennighoff-2023").law
    free = recommend(dc, FlopBudget(1e23))
    scarce = recommend(dc, FlopBudget(1e23), constraints=Constraints(unique_tokens=5e10))
    assert scarce.loss > free.loss
    assert scarce.flops == pytest.approx(1e23)
    assert scarce.tokens > 5e10  # repeats data rather than starving
    # Without a repetition model, unique tokens cap the tokens.
    ch = recommend(
        preset("epoch-2024").law, FlopBudget(1e23), constraints=Constraints(unique_tokens=5e10)
    )
    assert ch.tokens == pytest.approx(5e10)


def test_numeric_allocation_matches_closed_form_for_kaplan_shape() -> None:
    law = preset("kaplan-2020").law
    a1 = optimum_at_flops(law, 1e21, NONE)
    grid = np.geomspace(a1.params / 30, a1.params * 30, 4001)
    losses = law.predict(grid, 1e21 / (6 * grid))
    assert a1.loss <= losses.min() + 1e-9


def test_budgets_in_gpu_hours_and_money() -> None:
    law = preset("epoch-2024").law
    h100 = accelerator("h100")
    assert h100.peak_bf16_flops == pytest.approx(989.4e12)
    hw = Hardware("H100-SXM", mfu=0.4, usd_per_gpu_hour=2.0)
    by_hours = recommend(law, GpuHoursBudget(1e5, hw))
    assert by_hours.flops == pytest.approx(1e5 * 989.4e12 * 0.4 * 3600)
    assert by_hours.gpu_hours == pytest.approx(1e5)
    assert by_hours.cost_usd == pytest.approx(2e5)
    by_money = recommend(law, MoneyBudget(2e5, hw))
    assert by_money.params == pytest.approx(by_hours.params)
    with pytest.raises(InfeasibleConstraintsError):
        recommend(law, MoneyBudget(1e5, Hardware("A100")))
    with pytest.raises(UnknownNameError):
        recommend(law, GpuHoursBudget(1e5, Hardware("Z80")))


def test_target_loss_below_irreducible_is_unreachable() -> None:
    law = preset("chinchilla-2022").law
    with pytest.raises(UnreachableLossError) as exc:
        recommend(law, TargetLoss(1.5))
    assert exc.value.code == "unreachable_loss"
    a = recommend(law, TargetLoss(2.0))
    assert a.loss == pytest.approx(2.0, rel=1e-9)


def test_extrapolation_warning_names_the_factor() -> None:
    p = preset("epoch-2024")
    assert p.max_flops is not None
    near = recommend(p, FlopBudget(10 * p.max_flops))
    far = recommend(p, FlopBudget(1000 * p.max_flops))
    assert near.warnings == ()
    assert any("1e+03x" in w for w in far.warnings)


def test_intervals_from_bootstrap_cover_the_estimate() -> None:
    truth = chinchilla_preset("epoch-2024")
    rng = np.random.default_rng(0)
    runs = isoflop_sweep(truth, np.geomspace(1e18, 1e21, 6), noise=0.01, rng=rng)
    res = fit(runs, bootstrap=200, seed=1, holdout=False)
    alloc = recommend(res, FlopBudget(1e22), confidence=0.9)
    for name in ("params", "tokens", "loss"):
        lo, hi = alloc.intervals[name]
        assert lo < getattr(alloc, name) < hi, name
    assert alloc.law == res.law
    again = Allocation.from_json(json.loads(json.dumps(alloc.to_json())))
    assert again == alloc


@pytest.mark.parametrize("params", [1.2e8, 1e9, 7e9, 7e10])
def test_shapes_hit_the_parameter_count(params: float) -> None:
    s = shape_for_params(params)
    assert s.params == pytest.approx(params, rel=0.1)
    assert s.d_model % s.head_dim == 0
    assert s.n_heads * s.head_dim == s.d_model
    assert 40 < s.d_model / s.n_layer < 250


@settings(max_examples=200, deadline=None)
@given(
    rows=st.integers(1, 1200),
    confidence=st.floats(0.001, 0.999),
    seed=st.integers(0, 2**32 - 1),
    ties=st.booleans(),
)
def test_column_percentiles_are_numpys_linear_percentiles_exactly(
    rows: int, confidence: float, seed: int, ties: bool
) -> None:
    rng = np.random.default_rng(seed)
    arr = np.exp(3.0 * rng.normal(size=(rows, 4)))
    if ties:  # repeated values: the interpolation must land on them exactly
        arr[rng.integers(0, rows, size=rows // 2 + 1)] = arr[0]
    q = (50.0 * (1.0 - confidence), 50.0 * (1.0 + confidence))
    assert np.array_equal(column_percentiles(arr, q), np.percentile(arr, q, axis=0))


@pytest.mark.parametrize("total", [True, False])
@pytest.mark.parametrize("vocab_size", [256, 32000, 50304])
def test_shape_is_the_closest_candidate_by_count_then_aspect(total: bool, vocab_size: int) -> None:
    # The candidates' counts are computed once per setting; every answer is still the argmin
    # over all candidates, recomputed here from scratch.
    for params in np.geomspace(1e6, 1e12, 25):
        shape = shape_for_params(float(params), vocab_size=vocab_size, total=total)
        best = None
        for n_layer in range(1, 257):
            head = 64 if 128.0 * n_layer < 1024 else 128
            base = max(1, round(128.0 * n_layer / head))
            for mult in range(max(1, base - 4), base + 5):
                d_model = mult * head
                ne = 12.0 * n_layer * d_model**2
                count = ne + (vocab_size * d_model if total else 0)
                cost = abs(np.log(count / params)) + 0.02 * abs(np.log(d_model / (128.0 * n_layer)))
                if best is None or cost < best[0]:
                    best = (cost, n_layer, d_model, count)
        assert best is not None
        assert (shape.n_layer, shape.d_model, shape.params) == (best[1], best[2], int(best[3]))


def test_catalogue_entries_name_their_source() -> None:
    from service.scaling import CATALOGUE

    assert {"A100-SXM", "H100-SXM", "H100-PCIE", "H200"} <= set(CATALOGUE)
    for gpu in CATALOGUE.values():
        assert gpu.peak_bf16_flops > 1e14
        assert gpu.source
    assert accelerator("H200").peak_bf16_flops == accelerator("H100").peak_bf16_flops


def test_target_loss_with_constraints_and_progress() -> None:
    truth = chinchilla_preset("epoch-2024")
    rng = np.random.default_rng(4)
    runs = isoflop_sweep(truth, np.geomspace(1e18, 1e21, 5), noise=0.01, rng=rng)
    res = fit(runs, bootstrap=100, seed=2, holdout=False)
    seen: list[float] = []
    free = recommend(res, TargetLoss(2.3))
    capped = Constraints(max_params=free.params / 3)
    alloc = recommend(
        res, TargetLoss(2.3), constraints=capped, confidence=0.8, progress=seen.append
    )
    assert alloc.params == pytest.approx(free.params / 3)
    assert alloc.binding == ("max_params",)
    assert alloc.loss == pytest.approx(2.3, rel=1e-6)
    assert alloc.flops > 1.2 * free.flops
    assert seen[-1] == pytest.approx(1.0)
    assert alloc.intervals["flops"][0] < alloc.flops < alloc.intervals["flops"][1]


def test_a_resample_at_a_bound_is_dropped_and_counted_not_a_nan_interval() -> None:
    truth = chinchilla_preset("epoch-2024")
    runs = isoflop_sweep(
        truth, np.geomspace(1e18, 1e21, 5), noise=0.01, rng=np.random.default_rng(3)
    )
    result = fit(runs, bootstrap=40, seed=2, holdout=False)
    names = result.param_names
    degenerate = list(result.bootstrap_samples[0])
    degenerate[names.index("A")] = 0.0  # no N term: G = 0, N_opt = 0, D_opt = inf
    broken = replace(result, bootstrap_samples=(*result.bootstrap_samples, tuple(degenerate)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no numpy divide-by-zero on the way
        allocation = recommend(broken, FlopBudget(3e23), confidence=0.8)
    assert "1 bootstrap sample(s) gave no allocation" in allocation.warnings
    clean = recommend(result, FlopBudget(3e23), confidence=0.8)
    assert allocation.intervals == clean.intervals


def test_a_fits_sample_optima_are_each_samples_optimum_at_every_budget() -> None:
    truth = chinchilla_preset("epoch-2024")
    runs = isoflop_sweep(
        truth, np.geomspace(1e18, 1e21, 5), noise=0.01, rng=np.random.default_rng(4)
    )
    result = fit(runs, bootstrap=30, seed=5, holdout=False)
    for flops in (1e19, 3e23, 1e27):
        rows = result.sample_optima.at(flops)
        assert rows.shape == (30, 4)
        for law, row in zip(result.sample_laws(), rows, strict=True):
            p = optimum_at_flops(law, flops, Constraints())
            expected = (p.params, p.tokens, 6 * p.params * p.tokens, p.loss)
            assert tuple(row) == pytest.approx(expected, rel=1e-12)
    assert result.sample_optima is result.sample_optima  # computed once per fit


def test_vectorised_intervals_equal_the_per_sample_loop() -> None:
    truth = chinchilla_preset("epoch-2024")
    rng = np.random.default_rng(3)
    runs = isoflop_sweep(truth, np.geomspace(1e18, 1e21, 5), noise=0.01, rng=rng)
    result = fit(runs, bootstrap=60, seed=2, holdout=False)
    allocation = recommend(result, FlopBudget(3e23), confidence=0.8)
    rows = np.array(
        [
            [p.params, p.tokens, 6 * p.params * p.tokens, p.loss]
            for p in (optimum_at_flops(law, 3e23, Constraints()) for law in result.sample_laws())
        ]
    )
    for j, name in enumerate(("params", "tokens", "flops", "loss")):
        lo, hi = np.percentile(rows[:, j], (10.0, 90.0))
        assert allocation.intervals[name] == pytest.approx((lo, hi), rel=1e-9)
