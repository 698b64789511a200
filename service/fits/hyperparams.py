"""What a recommendation needs to know about an experiment beyond its fit: the vocabulary and
context length of its models, and the learning-rate and batch-size sweeps in its runs.

Vocabulary and context, first found wins: the experiment's metadata (`vocab_size`,
`context_tokens`); its autopilot's trainer shape (the trainer's defaults, byte vocabulary 256 and
context 1024, where the autopilot has a trainer without them); the runs' `hyperparameters`
(`vocab_size`, `context_tokens`) when every run that reports one agrees; else vocabulary 32000
(said in the answer's notes) and no context.

Sweeps: a run's peak learning rate is `hyperparameters.learning_rate` (or `peak_lr`, as the
trainer reports it, or `lr`), its batch size `hyperparameters.batch_size_tokens` (or
`batch_tokens`), in tokens per optimizer step. Excluded runs are left out.
"""

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import sqlalchemy as sa

from service.db import Reader
from service.fits.cache import FitCache
from service.scaling import RunArrays
from service.scaling.hyperparams_fit import HyperparameterFit, fit_hyperparameters
from service.scaling.runs import budget_labels
from service.scaling.shapes import DEFAULT_VOCAB_SIZE
from service.store.facts import AnyExperiment
from service.store.models import Run
from service.trainer.config import DEFAULT_CONTEXT_TOKENS
from service.trainer.config import DEFAULT_VOCAB_SIZE as TRAINER_VOCAB_SIZE

LEARNING_RATE_KEYS = ("learning_rate", "peak_lr", "lr")
BATCH_SIZE_KEYS = ("batch_size_tokens", "batch_tokens")


@dataclass(frozen=True)
class ExperimentModel:
    """vocab_size, context_tokens (None: unknown) and where they came from (``notes``); the
    sweeps' fit (None: no run reports a learning rate or batch size)."""

    vocab_size: int = DEFAULT_VOCAB_SIZE
    context_tokens: int | None = None
    notes: tuple[str, ...] = ()
    fitted: HyperparameterFit | None = None
    flops_convention: str = "training FLOPs, 6ND"


def _number(values: Mapping[str, Any], keys: tuple[str, ...]) -> float:
    for key in keys:
        value = values.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if math.isfinite(value) and value > 0:
            return float(value)
    return math.nan


def _count(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return value
    if isinstance(value, float) and value.is_integer() and value >= 1:
        return int(value)
    return None


def _trainer_shape(experiment: AnyExperiment) -> dict[str, Any] | None:
    trainer = (experiment.autofill or {}).get("trainer")
    if not isinstance(trainer, dict):
        return None
    shape = trainer.get("shape")
    return dict(shape) if isinstance(shape, dict) else {}


@dataclass(frozen=True)
class _RunsSummary:
    """What the runs say: the vocab_size and context_tokens values they report, and the fit of
    their learning-rate and batch-size sweeps."""

    reported: Mapping[str, frozenset[int]]
    fitted: HyperparameterFit | None


def _setting(
    key: str, experiment: AnyExperiment, reported: frozenset[int], trainer_default: int
) -> tuple[int | None, str]:
    value = _count(experiment.metadata_.get(key))
    if value is not None:
        return value, f"{key} {value} from the experiment's metadata"
    shape = _trainer_shape(experiment)
    if shape is not None:
        value = _count(shape.get(key, trainer_default))
        if value is not None:
            return value, f"{key} {value} from the autopilot's trainer shape"
    if len(reported) == 1:
        (value,) = reported
        return value, f"{key} {value} from the runs' hyperparameters"
    return None, ""


def _summarise_runs(reader: Reader, experiment_id: int) -> _RunsSummary:
    rows = reader.execute(
        # Labelled: a bare connection names the column "metadata", a session the attribute.
        sa.select(
            Run.flops, Run.loss, Run.params, Run.metadata_.label("metadata_"), Run.hyperparameters
        )
        .where(Run.experiment_id == experiment_id, Run.excluded.is_(False))
        .order_by(Run.id)
    ).all()
    hyper = [row.hyperparameters or {} for row in rows]
    reported = {
        key: frozenset(n for n in (_count(h.get(key)) for h in hyper) if n is not None)
        for key in ("vocab_size", "context_tokens")
    }
    learning_rate = np.array([_number(h, LEARNING_RATE_KEYS) for h in hyper])
    batch = np.array([_number(h, BATCH_SIZE_KEYS) for h in hyper])
    fitted = None
    if rows and (np.isfinite(learning_rate).any() or np.isfinite(batch).any()):
        budgets = [row.metadata_.get("budget") for row in rows]
        nominal = all(isinstance(b, int | float) and b > 0 for b in budgets)
        runs = RunArrays(
            [row.params for row in rows],
            [1.0] * len(rows),  # tokens are not needed to group budgets
            [row.loss for row in rows],
            flops=[row.flops for row in rows],
            budget=budgets if nominal else None,
        )
        fitted = fit_hyperparameters(
            flops=runs.flops,
            loss=runs.loss,
            params=runs.params,
            budget=budget_labels(runs),
            learning_rate=learning_rate,
            batch_size_tokens=batch,
        )
    return _RunsSummary(reported, fitted)


def experiment_model(reader: Reader, experiment: AnyExperiment, cache: FitCache) -> ExperimentModel:
    """The experiment's vocabulary, context and hyperparameter sweeps, as stored now; the runs
    are read once per data version (answers read this on every request)."""
    key = (experiment.id, experiment.created_at, experiment.data_version)
    summary = cache.runs_summary(key, lambda: _summarise_runs(reader, experiment.id))
    notes: list[str] = []
    vocab, said = _setting(
        "vocab_size", experiment, summary.reported["vocab_size"], TRAINER_VOCAB_SIZE
    )
    if vocab is None:
        notes.append(
            f"vocab_size unknown (set it in the experiment's metadata): {DEFAULT_VOCAB_SIZE} "
            "assumed for the shape"
        )
        vocab = DEFAULT_VOCAB_SIZE
    else:
        notes.append(said)
    context, said = _setting(
        "context_tokens", experiment, summary.reported["context_tokens"], DEFAULT_CONTEXT_TOKENS
    )
    if context is not None:
        notes.append(said)
    convention = (
        "training FLOPs, 6ND"
        if experiment.flops_formula == "6ND"
        else "training FLOPs as the runs report them"
    )
    return ExperimentModel(vocab, context, tuple(notes), summary.fitted, convention)
