"""Shared fixtures: the copied data files (see data/README.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.io.runs_csv import parse_runs_csv
from service.scaling import RunArrays

DATA = Path(__file__).resolve().parents[2] / "examples" / "data"
# Epoch's reference refit drops the 5 highest-loss rows (loss >= 3.446995).
EPOCH_MAX_LOSS = 3.446995


def load_csv(name: str, max_loss: float | None = None) -> RunArrays:
    return parse_runs_csv((DATA / name).read_text(), max_loss=max_loss).to_runs()


@pytest.fixture(scope="session")
def epoch_runs() -> RunArrays:
    return load_csv("epoch_chinchilla_svg_extracted_data.csv", max_loss=EPOCH_MAX_LOSS)
