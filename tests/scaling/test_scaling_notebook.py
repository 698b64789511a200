"""The core in a notebook: short reprs, a summary table, plain floats, validating constructors,
keyword-only options and ValueErrors for bad arguments."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from service.scaling import (
    Chinchilla,
    Constraints,
    DegenerateDataError,
    FitResult,
    FlopBudget,
    Frontier,
    GpuHoursBudget,
    Hardware,
    InvalidArgumentError,
    InvalidBudgetError,
    InvalidDataError,
    RunArrays,
    ScalingError,
    TargetLoss,
    UnknownNameError,
    fit,
    plan_runs,
    preset,
    recommend,
    shape_for_params,
)
from service.scaling.fit_envelope import fit_envelope
from service.scaling.fit_isoflop import fit_isoflop
from service.scaling.fit_parametric import bootstrap_refits, global_fit, newton_polish
from service.scaling.frontier import fit_power_law
from service.scaling.laws import DataConstrained, Kaplan
from service.scaling.objective import chinchilla_objective
from service.scaling.runs import budget_labels
from tests.scaling.scaling_synth import isoflop_sweep

TRUTH = preset("epoch-2024").law
BUDGETS = np.geomspace(1e18, 1e21, 5)


@pytest.fixture(scope="module")
def runs() -> RunArrays:
    assert isinstance(TRUTH, Chinchilla)
    return isoflop_sweep(TRUTH, BUDGETS, noise=0.01, rng=np.random.default_rng(0))


@pytest.fixture(scope="module")
def booted(runs: RunArrays) -> FitResult:
    return fit(runs, bootstrap=1000, seed=0)


def test_repr_leaves_the_bootstrap_samples_out(booted: FitResult) -> None:
    assert len(booted.bootstrap_samples) == 1000
    text = repr(booted)
    assert len(text) < 600
    assert "1000 samples" in text
    assert text.startswith("FitResult(law=Chinchilla(E=")


def test_run_arrays_repr_is_short() -> None:
    n = 10_000
    big = RunArrays(np.geomspace(1e7, 1e10, n), np.full(n, 1e10), np.full(n, 3.0))
    assert len(repr(big)) < 200
    assert "10000 rows" in repr(big)


def test_summary_is_a_table_of_estimates_and_intervals(booted: FitResult) -> None:
    text = booted.summary()
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 80
    for needed in ("chinchilla fit (parametric)", "Runs:", "Residual RMSE (log):", "95% low"):
        assert needed in text
    assert str(booted.n_runs) in text
    assert f"{booted.rmse_log_loss:.4g}" in text
    intervals = booted.intervals(confidence=0.95)
    for name in TRUTH.param_names:
        row = next(line for line in lines if line.split()[0] == name)
        assert f"{intervals[name][0]:.5g}" in row
        assert f"{intervals[name][1]:.5g}" in row
    assert "a (N_opt ~ C^a)" in text
    assert "90% low" in booted.summary(confidence=0.9)


def test_summary_without_samples_and_with_warnings(runs: RunArrays) -> None:
    res = fit(runs, law="kaplan", method="isoflop", holdout=False)
    text = res.summary()
    assert "frontier fit (isoflop)" in text
    assert "No bootstrap samples" in text
    assert "Warnings:" in text
    assert "ignored" in text
    for name in Frontier.param_names:
        assert any(line.split()[0] == name for line in text.splitlines() if line.strip())


def _plain(values: dict[str, Any]) -> None:
    for name, value in values.items():
        assert type(value) is float, (name, type(value))


def test_parameters_are_plain_floats(booted: FitResult, runs: RunArrays) -> None:
    _plain(vars(booted.law))
    _plain(booted.estimates)
    assert type(booted.objective) is float
    assert type(booted.rmse_log_loss) is float
    for lo, hi in booted.intervals(confidence=0.9).values():
        assert type(lo) is float and type(hi) is float
    _plain(vars(booted.sample_laws()[0]))
    _plain(vars(fit(runs, method="isoflop", holdout=False).law))
    _plain(vars(Chinchilla(*np.array([1.8, 400.0, 400.0, 0.3, 0.3]))))
    alloc = recommend(booted, FlopBudget(1e23))
    _plain({k: getattr(alloc, k) for k in ("params", "tokens", "flops", "loss")})


def test_allocation_holds_the_law_object(booted: FitResult, runs: RunArrays) -> None:
    alloc = recommend(booted, FlopBudget(1e23))
    assert alloc.law == booted.law
    assert isinstance(alloc.law, Chinchilla)
    assert alloc.to_json()["law"] == booted.law.to_json()
    frontier = fit(runs, method="isoflop", holdout=False)
    assert isinstance(recommend(frontier, FlopBudget(1e23)).law, Frontier)
    assert recommend(TRUTH, FlopBudget(1e23)).law is TRUTH


def test_run_arrays_accept_sequences() -> None:
    runs = RunArrays(params=[1e8, 2e8], tokens=(1e9, 2e9), loss=[3, 2.9], run_id=[0, 1])
    assert runs.params.dtype == np.float64
    assert runs.loss.tolist() == [3.0, 2.9]
    np.testing.assert_allclose(runs.flops, [6e17, 2.4e18])
    assert len(runs) == 2
    assert RunArrays.from_arrays([1e8], [1e9], [3.0]).params.tolist() == [1e8]


@pytest.mark.parametrize(
    ("columns", "error", "match"),
    [
        ({"tokens": [1e9]}, InvalidArgumentError, "'tokens': 1 values, but params has 2"),
        ({"loss": [3.0, 2.0, 1.0]}, InvalidArgumentError, "'loss': 3 values"),
        ({"params": ["a", "b"]}, InvalidArgumentError, "not numbers"),
        ({"params": [1e8, -1.0]}, InvalidDataError, r"rows \[1\]"),
        ({"loss": [3.0, np.nan]}, InvalidDataError, r"rows \[1\]"),
        ({"flops": [1.0]}, InvalidArgumentError, "'flops'"),
        ({"unique_tokens": [0.0, 1.0]}, InvalidDataError, "unique_tokens"),
        ({"run_id": [0]}, InvalidArgumentError, "'run_id'"),
        ({"flags": [True, False, True]}, InvalidArgumentError, "'flags'"),
    ],
)
def test_run_arrays_reject_bad_columns(
    columns: dict[str, Any], error: type[Exception], match: str
) -> None:
    good: dict[str, Any] = {"params": [1e8, 2e8], "tokens": [1e9, 2e9], "loss": [3.0, 2.9]}
    with pytest.raises(error, match=match) as exc:
        RunArrays(**(good | columns))
    assert isinstance(exc.value, ValueError)
    assert isinstance(exc.value, ScalingError)


KEYWORD_ONLY: list[tuple[Callable[..., Any], set[str]]] = [
    (fit, {"law", "method", "huber_delta", "bootstrap", "seed", "progress", "budget_tol"}),
    (recommend, {"constraints", "confidence", "progress"}),
    (plan_runs, {"taken", "batch_size", "noise", "prior", "family", "widen"}),
    (shape_for_params, {"aspect_ratio", "vocab_size", "total"}),
    (RunArrays.__init__, {"flops", "unique_tokens", "budget", "run_id", "flags"}),
    (RunArrays.from_arrays, {"flops", "unique_tokens", "budget", "run_id", "flags"}),
    (FitResult.intervals, {"confidence"}),
    (FitResult.summary, {"confidence"}),
    (Chinchilla.predict, {"unique_tokens"}),
    (Kaplan.predict, {"unique_tokens"}),
    (DataConstrained.predict, {"unique_tokens"}),
    (budget_labels, {"rel_tol"}),
    (fit_isoflop, {"rel_tol"}),
    (fit_envelope, {"bins_per_decade"}),
    (global_fit, {"n_starts", "grid"}),
    (newton_polish, {"weights", "maxiter", "rtol"}),
    (bootstrap_refits, {"chunk", "progress"}),
    (chinchilla_objective, {"weights"}),
    (fit_power_law, {"sigma_log"}),
]


@pytest.mark.parametrize(("func", "names"), KEYWORD_ONLY)
def test_options_are_keyword_only(func: Callable[..., Any], names: set[str]) -> None:
    params = inspect.signature(func).parameters.values()
    optional = {p.name for p in params if p.default is not inspect.Parameter.empty}
    assert names <= optional
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params if p.name in optional)


def test_options_given_by_position_are_refused(runs: RunArrays) -> None:
    with pytest.raises(TypeError):
        fit(runs, "chinchilla")  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        recommend(TRUTH, FlopBudget(1e23), Constraints())  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        TRUTH.predict([1e9], [1e10], [1e10])  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda r: fit(r, huber_delta=0.0), InvalidArgumentError),
        (lambda r: fit(r, huber_delta=float("nan")), InvalidArgumentError),
        (lambda r: fit(r, bootstrap=-1), InvalidArgumentError),
        (lambda r: fit(r, bootstrap=2.5), InvalidArgumentError),  # type: ignore[arg-type]
        (lambda r: fit(r, budget_tol=-0.1), InvalidArgumentError),
        (lambda r: fit(r, method="magic"), UnknownNameError),
        (lambda r: recommend(TRUTH, FlopBudget(1e23), confidence=1.5), InvalidArgumentError),
        (lambda r: FlopBudget(-1.0), InvalidBudgetError),
        (lambda r: GpuHoursBudget(0.0), InvalidArgumentError),
        (lambda r: TargetLoss(float("inf")), InvalidArgumentError),
        (lambda r: Hardware(mfu=1.5), InvalidArgumentError),
        (lambda r: Constraints(max_params=0.0), InvalidArgumentError),
        (lambda r: Constraints(inference_tokens=-1.0), InvalidArgumentError),
        (lambda r: shape_for_params(-5.0), InvalidArgumentError),
        (lambda r: plan_runs(r, None, 1e24, 1e23, 1e22, n_sizes=3), InvalidArgumentError),
    ],
)
def test_bad_arguments_are_value_errors(
    runs: RunArrays, call: Callable[[RunArrays], object], error: type[Exception]
) -> None:
    with pytest.raises(error) as exc:
        call(runs)
    assert isinstance(exc.value, ValueError)
    assert not isinstance(exc.value, DegenerateDataError)
