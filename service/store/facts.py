"""What an uncached answer reads of an experiment and its fit in force, as plain rows.

An answer needs a handful of columns; loading them as ORM objects (identity map, instance
state) cost a fifth of an uncached answer (bench/answer.py). Code that answers from either
takes `Experiment | ExperimentFacts` and `Fit | FitFacts`: these carry the same attribute names.
"""

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from service.store.models import Experiment, Fit


@dataclass(frozen=True, slots=True)
class ExperimentFacts:
    id: int
    name: str
    param_convention: str
    flops_formula: str
    metadata_: dict[str, Any]
    autofill: dict[str, Any] | None
    data_version: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class FitFacts:
    """A fit's identity and state; its result is read (once per fit: FitCache) by id."""

    id: int
    status: str
    runs_sha256: str | None
    data_version: int | None


# The columns behind each field, in field order (one list: the fields name the columns).
EXPERIMENT_COLUMNS = tuple(getattr(Experiment, field.name) for field in fields(ExperimentFacts))
FIT_COLUMNS = tuple(getattr(Fit, field.name) for field in fields(FitFacts))

AnyExperiment = Experiment | ExperimentFacts
AnyFit = Fit | FitFacts
