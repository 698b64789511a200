"""Issue #15 items 6, 8, 9: inference-aware budgets, inverse questions, comparisons."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from service.scaling import (
    Allocation,
    Chinchilla,
    Constraints,
    DegenerateDataError,
    FitResult,
    FlopBudget,
    Frontier,
    GpuHoursBudget,
    Hardware,
    InfeasibleConstraintsError,
    InvalidArgumentError,
    TargetLoss,
    optimum_at_flops,
    preset,
    recommend,
)
from service.scaling.allocate import ModelSize, UniqueData, inference_optimum
from service.scaling.compare import Candidate, compare
from service.scaling.hardware import accelerator, flops_from_gpu_hours
from service.scaling.inference import (
    equal_loss_optimum,
    optimum_at_total_flops,
    served_optimum_at_training_flops,
)
from service.scaling.inverse import optimum_for_params, optimum_for_tokens
from tests.scaling.scaling_synth import chinchilla_preset

SERVED = Constraints(inference_tokens=1e13)
TRAINING = Constraints(inference_tokens=1e13, budget_binds="training")


# -- item 8: inverse questions ---------------------------------------------------------------


def test_a_model_size_gives_the_rounded_chinchilla_budget() -> None:
    a = recommend(preset("chinchilla-2022"), ModelSize(1e9))
    assert a.params == pytest.approx(1e9, rel=1e-12)
    assert f"{a.flops:.4g}" == "2.642e+20"
    assert f"{a.tokens:.4g}" == "4.403e+10"
    # It is the compute-optimal point at that budget.
    at_c = optimum_at_flops(preset("chinchilla-2022").law, a.flops, Constraints())
    assert at_c.params == pytest.approx(1e9, rel=1e-9)


def test_unique_data_gives_the_model_and_budget_that_use_it_once() -> None:
    a = recommend(preset("chinchilla-2022"), UniqueData(4.403e10))
    assert a.tokens == pytest.approx(4.403e10, rel=1e-12)
    assert a.params == pytest.approx(1e9, rel=1e-3)
    assert a.flops == pytest.approx(2.642e20, rel=1e-3)


def test_a_target_loss_gives_the_budget_back() -> None:
    law = chinchilla_preset("chinchilla-2022")
    loss = float(law.predict(1e9, 4.4030175953e10))
    a = recommend(preset("chinchilla-2022"), TargetLoss(loss))
    assert a.flops == pytest.approx(2.642e20, rel=1e-3)
    assert a.params == pytest.approx(1e9, rel=1e-6)
    assert a.tokens == pytest.approx(4.403e10, rel=1e-3)


@pytest.mark.parametrize("name", ["epoch-2024", "muennighoff-2023", "kaplan-2020"])
def test_the_inverse_answers_invert_the_forward_one(name: str) -> None:
    source = preset(name)
    forward = recommend(source, FlopBudget(3e21))
    by_size = recommend(source, ModelSize(forward.params))
    by_data = recommend(source, UniqueData(forward.tokens))
    for inverse in (by_size, by_data):
        assert inverse.flops == pytest.approx(3e21, rel=1e-6)
        assert inverse.params == pytest.approx(forward.params, rel=1e-6)


def test_the_numeric_inverse_matches_the_closed_form_and_honours_limits() -> None:
    law = chinchilla_preset("epoch-2024")
    loose = Constraints(max_params=1e15)  # present but never binding: the numeric path
    for solve, value in ((optimum_for_params, 3e9), (optimum_for_tokens, 7e10)):
        closed = solve(law, value, Constraints())
        numeric = solve(law, value, loose)
        assert numeric.params == pytest.approx(closed.params, rel=1e-8)
        assert numeric.tokens == pytest.approx(closed.tokens, rel=1e-8)
    # A token limit makes the size grow faster with compute: the same size needs less.
    capped = optimum_for_params(law, 3e10, Constraints(max_tokens=1e11))
    assert capped.params == pytest.approx(3e10, rel=1e-8)
    assert capped.tokens == pytest.approx(1e11, rel=1e-8)
    assert capped.binding == ("max_tokens",)
    with pytest.raises(InfeasibleConstraintsError):
        recommend(law, ModelSize(1e10), constraints=Constraints(max_params=1e9))
    with pytest.raises(InfeasibleConstraintsError):
        recommend(law, UniqueData(1e12), constraints=Constraints(unique_tokens=1e11))


def test_a_frontier_inverts_its_power_laws() -> None:
    front = Frontier(k_N=0.09, a=0.5, k_D=1 / 0.54, b=0.5, k_L=60.0, gamma=0.05, E=1.7)
    by_size = recommend(front, ModelSize(2e9))
    assert front.params(by_size.flops) == pytest.approx(2e9, rel=1e-9)
    by_data = recommend(front, UniqueData(by_size.tokens))
    assert by_data.flops == pytest.approx(by_size.flops, rel=1e-9)


def test_target_loss_keeps_item_1s_guard() -> None:
    plain = Frontier(k_N=0.09, a=0.5, k_D=1 / 0.54, b=0.5, k_L=60.0, gamma=0.05, E=0.0)
    with pytest.raises(DegenerateDataError):
        recommend(plain, TargetLoss(2.0))
    # A target beyond the largest run is an extrapolated answer, and says so.
    far = recommend(preset("chinchilla-2022"), TargetLoss(1.8))
    assert any("extrapolating the loss law" in w for w in far.warnings)


def test_inverse_answers_carry_bootstrap_intervals() -> None:
    law = chinchilla_preset("epoch-2024")
    rng = np.random.default_rng(0)
    rows = [
        tuple(v * float(np.exp(rng.normal(0.0, 0.01))) for v in law.values()) for _ in range(40)
    ]
    result = FitResult(
        law=law,
        method="parametric",
        n_runs=100,
        huber_delta=1e-3,
        objective=0.0,
        iterations=1,
        converged=True,
        rmse_log_loss=0.01,
        extrapolation_error=None,
        max_flops=1e22,
        bootstrap_samples=tuple(rows),
    )
    a = recommend(result, ModelSize(1e9), confidence=0.9)
    lo, hi = a.intervals["flops"]
    assert lo < a.flops < hi
    assert a.intervals["params"][0] == pytest.approx(1e9, rel=1e-6)


# -- item 6: what a budget means with inference tokens ----------------------------------------


def test_the_total_budget_is_never_exceeded() -> None:
    source = preset("chinchilla-2022")
    a = recommend(source, FlopBudget(1e24), constraints=SERVED)
    assert a.flops < 1e24
    assert a.flops + a.inference_flops == pytest.approx(1e24, rel=1e-9)
    assert a.total_flops == pytest.approx(1e24, rel=1e-9)
    assert a.inference_flops == pytest.approx(2 * a.params * 1e13)
    assert any("budget_binds=total" in n for n in a.notes)
    # Part of the budget serves the model: its loss is above the training-only optimum's.
    plain = recommend(source, FlopBudget(1e24))
    assert a.loss > plain.loss
    # It is on Sardana's frontier: the least lifetime compute for its loss.
    sardana = inference_optimum(source.law, a.loss, SERVED)
    assert a.params == pytest.approx(sardana.params, rel=1e-5)


def test_the_equal_loss_optimum_shows_the_saving() -> None:
    a = recommend(preset("chinchilla-2022"), FlopBudget(1e24), constraints=SERVED)
    ref = a.equal_loss_optimum
    assert ref is not None
    assert ref.loss == pytest.approx(a.loss, rel=1e-9)
    assert ref.params > a.params  # compute-optimal: bigger, trained on fewer tokens
    assert ref.tokens < a.tokens
    assert ref.flops < a.flops  # cheaper to train...
    assert ref.total_flops > a.total_flops  # ...dearer over its life
    assert ref.inference_flops == pytest.approx(2 * ref.params * 1e13)
    law = chinchilla_preset("chinchilla-2022")
    assert float(law.predict(ref.params, ref.tokens)) == pytest.approx(a.loss, rel=1e-9)
    assert any("saves" in n for n in a.notes)


def test_the_training_budget_variant_spends_it_all_on_training() -> None:
    source = preset("chinchilla-2022")
    a = recommend(source, FlopBudget(1e24), constraints=TRAINING)
    assert a.flops == pytest.approx(1e24, rel=1e-12)
    assert a.total_flops == pytest.approx(1e24 + 2 * a.params * 1e13, rel=1e-12)
    plain = recommend(source, FlopBudget(1e24))
    assert a.params < plain.params  # smaller and longer-trained than compute-optimal
    assert a.loss > plain.loss
    # The same point as the total-budget answer for its lifetime compute.
    total = optimum_at_total_flops(source.law, a.total_flops, SERVED)
    assert total.params == pytest.approx(a.params, rel=1e-5)
    assert any("budget_binds=training" in n for n in a.notes)
    ref = a.equal_loss_optimum
    assert ref is not None and ref.total_flops > a.total_flops


@pytest.mark.parametrize("name", ["epoch-2024", "muennighoff-2023"])
def test_both_readings_lie_on_sardanas_frontier(name: str) -> None:
    law = preset(name).law
    assert not isinstance(law, Frontier)
    t = served_optimum_at_training_flops(law, 1e23, SERVED)
    assert 6 * t.params * t.tokens == pytest.approx(1e23)
    u = optimum_at_total_flops(law, 6 * t.params * t.tokens + 2 * t.params * 1e13, SERVED)
    assert u.params == pytest.approx(t.params, rel=1e-5)


def test_little_inference_leaves_the_compute_optimal_point() -> None:
    law = chinchilla_preset("epoch-2024")
    plain = optimum_at_flops(law, 1e23, Constraints())
    few = Constraints(inference_tokens=1e3)
    assert optimum_at_total_flops(law, 1e23, few).params == pytest.approx(plain.params, rel=1e-4)
    t = served_optimum_at_training_flops(law, 1e23, few)
    assert t.params == pytest.approx(plain.params, rel=1e-4)


def test_limits_bind_with_inference() -> None:
    law = chinchilla_preset("chinchilla-2022")
    free = optimum_at_total_flops(law, 1e24, SERVED)
    capped = optimum_at_total_flops(law, 1e24, replace(SERVED, max_params=free.params / 3))
    assert capped.params == pytest.approx(free.params / 3)
    assert capped.binding == ("max_params",)
    assert 6 * capped.params * capped.tokens + 2 * capped.params * 1e13 == pytest.approx(1e24)
    short = served_optimum_at_training_flops(law, 1e24, replace(SERVED, max_tokens=1e12))
    assert short.tokens == pytest.approx(1e12)
    assert short.binding == ("max_tokens",)


def test_a_gpu_hour_budget_reads_the_same_way() -> None:
    hw = Hardware(gpu="H100-SXM", mfu=0.4)
    flops = flops_from_gpu_hours(1e6, accelerator("H100-SXM"), 0.4)
    a = recommend(preset("epoch-2024"), GpuHoursBudget(1e6, hw), constraints=SERVED)
    assert a.total_flops == pytest.approx(flops, rel=1e-9)
    assert a.gpu_hours is not None and a.gpu_hours < 1e6  # the training share of it


def test_budget_binds_is_checked_and_round_trips() -> None:
    with pytest.raises(InvalidArgumentError):
        Constraints(budget_binds="lifetime")  # type: ignore[arg-type]
    a = recommend(preset("epoch-2024"), FlopBudget(1e23), constraints=SERVED)
    again = Allocation.from_json(a.to_json())
    assert again == a
    assert a.to_json()["total_flops"] == pytest.approx(a.total_flops)
    assert equal_loss_optimum(preset("epoch-2024").law, 1.0, SERVED) is None  # below E


# -- item 9: comparisons ---------------------------------------------------------------------


def test_compare_states_the_disagreement_in_numbers() -> None:
    names = ["chinchilla-2022", "epoch-2024", "kaplan-2020"]
    result = compare([Candidate(n, preset(n)) for n in names], FlopBudget(1e24))
    rows = {r.label: r for r in result.rows}
    params = {n: rows[n].allocation.params for n in names}  # type: ignore[union-attr]
    spread = result.disagreement.spreads["params"]
    assert spread.ratio == pytest.approx(max(params.values()) / min(params.values()))
    assert (spread.low_label, spread.high_label) == ("chinchilla-2022", "kaplan-2020")
    losses = [rows[n].allocation.loss for n in names]  # type: ignore[union-attr]
    assert result.disagreement.spreads["loss"].difference == pytest.approx(
        max(losses) - min(losses)
    )
    assert result.disagreement.spreads["flops"].ratio == pytest.approx(1.0)
    assert (rows["kaplan-2020"].params_convention, rows["kaplan-2020"].flops_convention) == (
        "non-embedding",
        "C_min",
    )
    assert (rows["epoch-2024"].params_convention, rows["epoch-2024"].flops_convention) == (
        "total",
        "C",
    )
    caveats = " ".join(result.disagreement.caveats)
    assert "total vs non-embedding" in caveats
    assert "1.66x" in caveats  # 2^0.73: reading C_min = C instead of C/2
    assert "not comparable" in caveats  # MassiveText vs WebText2 losses
    assert f"{spread.ratio:.3g}x" in result.disagreement.statement
    assert result.disagreement.statement in result.summary()


def test_compare_laws_of_one_data_set_has_no_data_caveat() -> None:
    names = ["chinchilla-2022", "chinchilla-2022-tex", "epoch-2024"]
    result = compare([Candidate(n, preset(n)) for n in names], TargetLoss(1.9))
    assert result.disagreement.answered == 3
    assert result.disagreement.caveats == ()
    assert result.disagreement.spreads["loss"].difference == pytest.approx(0.0, abs=1e-9)
    assert result.disagreement.spreads["flops"].ratio > 1.0


def test_a_source_that_cannot_answer_carries_its_error() -> None:
    names = ["chinchilla-2022", "epoch-2024"]  # epoch's E = 1.817 is above the target
    result = compare([Candidate(n, preset(n)) for n in names], TargetLoss(1.8))
    failed = next(r for r in result.rows if r.label == "epoch-2024")
    assert failed.allocation is None
    assert failed.error is not None and failed.error.code == "unreachable_loss"
    assert result.disagreement.answered == 1
    assert result.disagreement.spreads == {}


def test_compare_says_whether_intervals_overlap() -> None:
    law = chinchilla_preset("epoch-2024")

    def fitted(scale: float) -> FitResult:
        rng = np.random.default_rng(1)
        rows = [
            tuple(v * float(np.exp(rng.normal(0.0, 0.005))) for v in law.values())
            for _ in range(30)
        ]
        shifted = Chinchilla(law.E, law.A * scale, law.B, law.alpha, law.beta)
        return FitResult(
            law=shifted,
            method="parametric",
            n_runs=50,
            huber_delta=1e-3,
            objective=0.0,
            iterations=1,
            converged=True,
            rmse_log_loss=0.01,
            extrapolation_error=None,
            max_flops=1e22,
            bootstrap_samples=tuple((r[0], r[1] * scale, r[2], r[3], r[4]) for r in rows),
        )

    same = compare([Candidate("a", fitted(1.0)), Candidate("b", fitted(1.0))], FlopBudget(1e22))
    assert same.disagreement.spreads["params"].intervals_overlap is True
    apart = compare([Candidate("a", fitted(1.0)), Candidate("b", fitted(3.0))], FlopBudget(1e22))
    assert apart.disagreement.spreads["params"].intervals_overlap is False
    assert any("do not overlap" in c for c in apart.disagreement.caveats)
    with pytest.raises(InvalidArgumentError):
        compare([Candidate("a", fitted(1.0)), Candidate("a", law)], FlopBudget(1e22))
