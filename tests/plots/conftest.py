"""Fixtures: fits of a synthetic sweep from a known Chinchilla law, and the copied Epoch data."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.io.runs_csv import parse_runs_csv
from service.scaling import FitResult, RunArrays, fit
from tests.plots.plots_svg import sweep

DATA = Path(__file__).resolve().parents[2] / "examples" / "data"
# As in tests/scaling: Epoch's reference refit drops the 5 highest-loss rows.
EPOCH_MAX_LOSS = 3.446995


@pytest.fixture(scope="session")
def runs() -> RunArrays:
    return sweep()


@pytest.fixture(scope="session")
def parametric(runs: RunArrays) -> FitResult:
    return fit(runs, method="parametric", holdout=False)


@pytest.fixture(scope="session")
def parametric_boot(runs: RunArrays) -> FitResult:
    return fit(runs, method="parametric", bootstrap=40, seed=1, holdout=False)


@pytest.fixture(scope="session")
def isoflop(runs: RunArrays) -> FitResult:
    return fit(runs, method="isoflop", bootstrap=20, seed=1, holdout=False)


@pytest.fixture(scope="session")
def epoch_runs() -> RunArrays:
    text = (DATA / "epoch_chinchilla_svg_extracted_data.csv").read_text()
    return parse_runs_csv(text, max_loss=EPOCH_MAX_LOSS).to_runs()
