"""Learning rate and batch size with the allocation: DeepSeek's rules and the experiment's own."""

import numpy as np
import pytest

from service.scaling import FlopBudget, preset, recommend, shape_for_params
from service.scaling.hyperparams import (
    DEEPSEEK_2024,
    deepseek_flops,
    recommend_hyperparameters,
)
from service.scaling.hyperparams_fit import fit_hyperparameters
from service.scaling.runs import group_budgets
from service.scaling.shapes import ModelShape

SHAPE = ModelShape(
    n_layer=24, d_model=2048, n_heads=16, head_dim=128, params=0, non_embedding_params=0
)


def eta(flops: float) -> float:
    return 0.3118 * flops**-0.125


def batch(flops: float) -> float:
    return 0.2920 * flops**0.3271


def test_deepseek_rules_at_1e20_flops() -> None:
    assert DEEPSEEK_2024.learning_rate(1e20) == pytest.approx(9.86e-4, rel=1e-3)
    assert DEEPSEEK_2024.batch_size_tokens(1e20) == pytest.approx(1.017e6, rel=1e-3)


def test_the_preset_is_evaluated_at_non_embedding_flops_per_token_times_tokens() -> None:
    m = 72 * 24 * 2048**2 + 12 * 24 * 2048 * 4096
    assert deepseek_flops(SHAPE, 1e9, 4096) == pytest.approx(m * 1e9)
    tokens = 1e20 / m  # DeepSeek's C = M D = 1e20
    answer = recommend_hyperparameters(
        shape=SHAPE, tokens=tokens, flops=6 * 1.3e9 * tokens, context_tokens=4096
    )
    assert answer.learning_rate.value == pytest.approx(9.86e-4, rel=1e-3)
    assert answer.batch_size_tokens.value == pytest.approx(1.017e6, rel=1e-3)
    assert answer.learning_rate.flops == pytest.approx(1e20)
    assert answer.learning_rate.source == "preset deepseek-2024"
    assert answer.batch_size_sequences == pytest.approx(1.017e6 / 4096, rel=1e-3)
    assert answer.learning_rate.interval is None
    # 1e20 lies above the 1e17-2e19 FLOPs the rules were fitted on: both say so.
    assert len(answer.warnings) == 2
    assert all("5x above" in w and "checked it at 1e+20" in w for w in answer.warnings)


def test_inside_the_fitted_range_no_warning_and_no_context_is_said() -> None:
    answer = recommend_hyperparameters(shape=SHAPE, tokens=1e18 / (72 * 24 * 2048**2), flops=1)
    assert answer.learning_rate.value == pytest.approx(eta(1e18))
    assert answer.warnings == ()
    assert answer.batch_size_sequences is None
    assert any("attention term" in note for note in answer.notes)


def sweep_runs(
    budgets: tuple[float, ...] = (1e17, 1e18, 1e19, 1e20), noise: float = 0.002, seed: int = 0
) -> dict[str, np.ndarray]:
    """Grids of learning rate x batch size at each budget, two model sizes per budget (the
    larger one better), loss quadratic in log(lr / eta_opt) and log(B / B_opt)."""
    rng = np.random.default_rng(seed)
    rows = []
    for flops in budgets:
        for size, penalty in (
            (1e8 * (flops / 1e18) ** 0.5, 0.0),
            (3e7 * (flops / 1e18) ** 0.5, 0.1),
        ):
            for lr in eta(flops) * np.geomspace(0.25, 4, 7):
                for bs in batch(flops) * np.geomspace(0.25, 4, 7):
                    loss = (
                        3.0
                        + penalty
                        + 0.05 * np.log(lr / eta(flops)) ** 2
                        + 0.03 * np.log(bs / batch(flops)) ** 2
                        + rng.normal(0, noise)
                    )
                    rows.append((flops, loss, size, lr, bs))
    a = np.array(rows)
    return {"flops": a[:, 0], "loss": a[:, 1], "params": a[:, 2], "lr": a[:, 3], "bs": a[:, 4]}


def fit_sweeps(runs: dict[str, np.ndarray]):  # type: ignore[no-untyped-def]
    return fit_hyperparameters(
        flops=runs["flops"],
        loss=runs["loss"],
        params=runs["params"],
        budget=group_budgets(runs["flops"]),
        learning_rate=runs["lr"],
        batch_size_tokens=runs["bs"],
    )


def test_sweeps_recover_the_rules_with_intervals() -> None:
    fitted = fit_sweeps(sweep_runs())
    lr, bs = fitted.learning_rate, fitted.batch_size_tokens
    assert lr is not None and bs is not None
    assert len(lr.optima) == 4 and lr.dropped == ()
    low, high = lr.exponent_interval(0.95)
    assert low < -0.125 < high and high - low < 0.05
    low, high = bs.exponent_interval(0.95)
    assert low < 0.3271 < high and high - low < 0.06
    # The budget's optimum comes from the better model size swept.
    assert [o.params for o in lr.optima] == pytest.approx([1e8 * 10**k for k in (-0.5, 0, 0.5, 1)])
    answer = recommend_hyperparameters(shape=SHAPE, tokens=1e10, flops=1e19, fitted=fitted)
    assert answer.learning_rate.source == "fitted"
    assert answer.learning_rate.value == pytest.approx(eta(1e19), rel=0.05)
    assert answer.batch_size_tokens.value == pytest.approx(batch(1e19), rel=0.05)
    lo, hi = answer.learning_rate.interval or (0.0, 0.0)
    assert lo < eta(1e19) < hi
    assert answer.learning_rate.valid_flops == pytest.approx((1e17, 1e20))
    assert answer.warnings == ()
    far = recommend_hyperparameters(shape=SHAPE, tokens=1e10, flops=1e22, fitted=fitted)
    assert [w.split(":")[0] for w in far.warnings] == ["learning_rate", "batch_size_tokens"]


def test_sweeps_at_too_few_budgets_fall_back_to_the_preset_and_say_why() -> None:
    fitted = fit_sweeps(sweep_runs(budgets=(1e17, 1e18)))
    assert fitted.learning_rate is None and fitted.batch_size_tokens is None
    assert any("2 budget(s)" in note for note in fitted.notes)
    answer = recommend_hyperparameters(shape=SHAPE, tokens=1e9, flops=1e18, fitted=fitted)
    assert answer.learning_rate.source == "preset deepseek-2024"
    assert set(fitted.notes) <= set(answer.notes)


def test_a_sweep_whose_best_value_is_at_its_edge_is_dropped() -> None:
    runs = sweep_runs()
    # At 1e21 only learning rates far below the optimum were tried: the best is the largest.
    low_lrs = eta(1e21) * np.array([0.01, 0.02, 0.04])
    extra = {
        "flops": np.full(3, 1e21),
        "loss": 3.0 + 0.05 * np.log(low_lrs / eta(1e21)) ** 2,
        "params": np.full(3, 3e9),
        "lr": low_lrs,
        "bs": np.full(3, batch(1e21)),
    }
    fitted = fit_sweeps({k: np.concatenate([v, extra[k]]) for k, v in runs.items()})
    assert fitted.learning_rate is not None
    assert len(fitted.learning_rate.optima) == 4
    (dropped,) = fitted.learning_rate.dropped
    assert "1e+21 FLOPs" in dropped and "is the largest" in dropped


def test_runs_without_sweeps_fit_nothing() -> None:
    runs = sweep_runs()
    runs["lr"][:] = 3e-4  # one learning rate everywhere
    fitted = fit_sweeps(runs)
    assert fitted.learning_rate is None
    assert fitted.batch_size_tokens is not None
    assert any(note.startswith("no learning_rate sweep") for note in fitted.notes)


def test_the_shape_uses_the_experiments_vocabulary() -> None:
    byte = shape_for_params(2e7, vocab_size=256)
    llama = shape_for_params(2e7, vocab_size=32000)
    assert byte.params - byte.non_embedding_params == 256 * byte.d_model
    assert llama.params - llama.non_embedding_params == 32000 * llama.d_model
    assert byte.non_embedding_params > llama.non_embedding_params
    alloc = recommend(preset("epoch-2024"), FlopBudget(1e20), vocab_size=256)
    assert alloc.shape.params - alloc.shape.non_embedding_params == 256 * alloc.shape.d_model
    with pytest.raises(ValueError, match="vocab_size"):
        shape_for_params(1e8, vocab_size=0)
