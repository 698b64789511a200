"""Every degenerate input gives its typed error, with details of what is missing."""

from __future__ import annotations

import numpy as np
import pytest

from service.scaling import (
    DegenerateDataError,
    ExponentAtBoundError,
    InsufficientDataError,
    InvalidDataError,
    RunArrays,
    ScalingError,
    UnknownNameError,
    fit,
    preset,
)
from service.scaling.laws import Chinchilla
from tests.scaling.scaling_synth import isoflop_sweep

GRID_N = np.repeat(np.geomspace(1e8, 1e10, 6), 5)
GRID_D = np.tile(np.geomspace(1e9, 1e11, 5), 6)


def _chinchilla() -> Chinchilla:
    law = preset("chinchilla-2022").law
    assert isinstance(law, Chinchilla)
    return law


def test_error_carries_code_message_and_details() -> None:
    with pytest.raises(InsufficientDataError) as exc:
        fit(RunArrays.from_arrays([1e8, 1e9, 1e10], [1e9, 1e10, 1e11], [3.0, 2.8, 2.5]))
    err = exc.value
    assert isinstance(err, ScalingError)
    assert err.details == {"needed": 6, "what": "runs", "target": "the chinchilla law", "got": 3}
    assert err.code == "insufficient_data"
    assert "Need at least 6 runs" in str(err)


@pytest.mark.parametrize("column", ["params", "tokens", "loss"])
@pytest.mark.parametrize("bad", [0.0, -1.0, np.nan, np.inf])
def test_non_positive_or_non_finite_values(column: str, bad: float) -> None:
    cols = {"params": GRID_N.copy(), "tokens": GRID_D.copy(), "loss": np.full(GRID_N.size, 3.0)}
    cols[column][[2, 7]] = bad
    with pytest.raises(InvalidDataError) as exc:
        RunArrays.from_arrays(**cols)
    assert exc.value.details == {"column": column, "rows": [2, 7]}


def test_one_model_size() -> None:
    N = np.full(10, 1e9)
    D = np.geomspace(1e9, 1e11, 10)
    with pytest.raises(DegenerateDataError, match="one model size"):
        fit(RunArrays.from_arrays(N, D, _chinchilla().predict(N, D)))


def test_one_budget_parametric_and_isoflop() -> None:
    runs = isoflop_sweep(_chinchilla(), np.array([1e20]))
    with pytest.raises(DegenerateDataError, match="one compute budget"):
        fit(runs)
    with pytest.raises(DegenerateDataError, match="1 compute budget"):
        fit(runs, method="isoflop")


def test_isoflop_without_curvature() -> None:
    runs = isoflop_sweep(_chinchilla(), np.array([1e19, 1e20]), n_sizes=2)
    with pytest.raises(InsufficientDataError) as exc:
        fit(runs, method="isoflop")
    assert exc.value.details["got"] == 0


def test_exponent_not_identified() -> None:
    # Loss independent of tokens: the B / D^beta term cannot be identified.
    L = 2.0 + 400.0 / GRID_N**0.3
    with pytest.raises(ExponentAtBoundError) as exc:
        fit(RunArrays.from_arrays(GRID_N, GRID_D, L))
    assert exc.value.details["name"] == "beta"
    # Loss rising with params: alpha cannot be positive.
    L2 = 2.0 + 0.3 * (GRID_N / 1e8) ** 0.1 + 100.0 / GRID_D**0.3
    with pytest.raises(ExponentAtBoundError) as exc2:
        fit(RunArrays.from_arrays(GRID_N, GRID_D, L2))
    assert exc2.value.details["name"] == "alpha"


def test_data_constrained_needs_unique_tokens_and_repetition() -> None:
    L = _chinchilla().predict(GRID_N, GRID_D)
    with pytest.raises(InsufficientDataError, match="unique_tokens"):
        fit(RunArrays.from_arrays(GRID_N, GRID_D, L), law="data_constrained")
    with pytest.raises(DegenerateDataError, match="no run repeats data"):
        fit(
            RunArrays.from_arrays(GRID_N, GRID_D, L, unique_tokens=GRID_D * 2),
            law="data_constrained",
        )


def test_envelope_needs_two_sizes_in_some_flop_bin() -> None:
    # One point per size, each at its own compute: no bin offers a choice, so no envelope.
    N = np.geomspace(1e8, 1e10, 6)
    D = 20.0 * N
    runs = RunArrays(N, D, _chinchilla().predict(N, D))
    with pytest.raises(DegenerateDataError, match="no FLOP bin holds points of two model sizes"):
        fit(runs, method="envelope")


@pytest.mark.parametrize("n_points", [0, 1, 2])
def test_envelope_with_too_few_points(n_points: int) -> None:
    # Filters that select nothing reach the envelope with no rows: a typed error, not numpy's.
    N = np.geomspace(1e8, 1e9, 2)[:n_points]
    D = 20.0 * N
    runs = RunArrays(N, D, _chinchilla().predict(N, D) if n_points else [])
    with pytest.raises(InsufficientDataError, match=f"got {n_points}"):
        fit(runs, method="envelope")


def test_unknown_law_and_method() -> None:
    runs = isoflop_sweep(_chinchilla(), np.geomspace(1e18, 1e20, 3))
    with pytest.raises(UnknownNameError, match="method"):
        fit(runs, method="magic")
    with pytest.raises(UnknownNameError, match="law"):
        fit(runs, law="hoffmann")


def test_frontier_methods_say_when_they_ignore_the_law() -> None:
    runs = isoflop_sweep(_chinchilla(), np.geomspace(1e18, 1e20, 3))
    res = fit(runs, law="kaplan", method="isoflop")
    assert "ignored" in res.warnings[0]
    assert fit(runs, method="isoflop").warnings == ()
