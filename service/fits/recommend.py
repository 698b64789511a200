"""Recommendations: resolve the source (current fit, fit id, preset), then ask the core."""

from dataclasses import dataclass, field, replace

from sqlalchemy.orm import Session, sessionmaker

from service.db import session_scope
from service.errors import InvalidInputError, NotFoundError
from service.fits.cache import FitCache
from service.fits.hyperparams import ExperimentModel, experiment_model
from service.fits.staleness import is_stale
from service.scaling import (
    Budget,
    Constraints,
    FitResult,
    FlopBudget,
    GpuHoursBudget,
    Hardware,
    MoneyBudget,
    Preset,
    TargetLoss,
    preset,
    recommend,
)
from service.scaling.allocate import Allocation
from service.scaling.hyperparams import Hyperparameters, recommend_hyperparameters
from service.scaling.shapes import DEFAULT_VOCAB_SIZE
from service.schemas.recommendations import (
    BudgetSpec,
    ConstraintsSpec,
    HyperparametersOut,
    Interval,
    Recommendation,
    SourceOut,
    SourceSpec,
)
from service.store import experiments as experiment_store
from service.store import fits as fit_store
from service.store.models import Experiment, Fit

DEFAULT_MFU = 0.4
PRESET_MODEL = ExperimentModel(
    notes=(
        f"a preset has no experiment: vocab_size {DEFAULT_VOCAB_SIZE} assumed for the shape, "
        "context length unknown",
    )
)


@dataclass(frozen=True)
class ResolvedSource:
    """model: the experiment's vocabulary, context and hyperparameter sweeps (defaults for a
    preset)."""

    source: FitResult | Preset
    out: SourceOut
    model: ExperimentModel = field(default_factory=ExperimentModel)


def _from_fit(
    session: Session, fit_row: Fit, experiment: Experiment, cache: FitCache
) -> ResolvedSource:
    if fit_row.status != "succeeded":
        raise InvalidInputError(
            f"fit {fit_row.id} is {fit_row.status}; only a succeeded fit can answer",
            fit_id=fit_row.id,
            status=fit_row.status,
        )

    def load() -> FitResult:
        assert fit_row.result is not None
        return FitResult.from_json(fit_row.result)

    loaded = cache.get(fit_row.id, fit_row.runs_sha256 or "", load)
    stale = is_stale(fit_row, experiment)
    return ResolvedSource(
        loaded,
        SourceOut(kind="fit", fit_id=fit_row.id, experiment=experiment.name, stale=stale),
        experiment_model(session, experiment),
    )


def resolve(session: Session, spec: SourceSpec, cache: FitCache) -> ResolvedSource:
    if spec.preset is not None:
        return ResolvedSource(
            preset(spec.preset), SourceOut(kind="preset", preset=spec.preset), PRESET_MODEL
        )
    if spec.fit_id is not None:
        fit_row = fit_store.get(session, spec.fit_id)
        return _from_fit(session, fit_row, fit_row.experiment, cache)
    assert spec.experiment is not None
    experiment = experiment_store.get_by_name(session, spec.experiment)
    return resolve_current(session, experiment, spec.law, spec.method, cache)


def resolve_current(
    session: Session, experiment: Experiment, law: str, method: str, cache: FitCache
) -> ResolvedSource:
    """The experiment's fit in force for this law and method."""
    current = fit_store.current(session, experiment.id, law, method)
    if current is None:
        raise NotFoundError(
            f"experiment {experiment.name!r} has no {method} {law} fit yet: "
            f"POST /v1/experiments/{experiment.name}/fits",
            experiment=experiment.name,
            law=law,
            method=method,
        )
    return _from_fit(session, current, experiment, cache)


def budget_of(spec: BudgetSpec) -> Budget:
    hardware = (
        Hardware(
            gpu=spec.gpu,
            mfu=spec.mfu if spec.mfu is not None else DEFAULT_MFU,
            usd_per_gpu_hour=spec.usd_per_gpu_hour,
        )
        if spec.gpu is not None
        else None
    )
    if spec.flops is not None:
        return FlopBudget(spec.flops, hardware)
    if spec.target_loss is not None:
        return TargetLoss(spec.target_loss, hardware)
    assert hardware is not None
    if spec.gpu_hours is not None:
        return GpuHoursBudget(spec.gpu_hours, hardware)
    assert spec.usd is not None
    return MoneyBudget(spec.usd, hardware)


def answer(
    resolved: ResolvedSource, budget: BudgetSpec, constraints: ConstraintsSpec, confidence: float
) -> Recommendation:
    allocation = recommend(
        resolved.source,
        budget_of(budget),
        constraints=Constraints(**constraints.model_dump()),
        confidence=confidence,
        vocab_size=resolved.model.vocab_size,
    )
    warnings = list(allocation.warnings)
    if resolved.out.stale:
        warnings.append("the fit is stale: runs changed since it was made; a refit is scheduled")
    return Recommendation(
        params=allocation.params,
        tokens=allocation.tokens,
        flops=allocation.flops,
        tokens_per_param=allocation.tokens_per_param,
        loss=allocation.loss,
        inference_flops=allocation.inference_flops,
        confidence=allocation.confidence,
        intervals={k: Interval(low=lo, high=hi) for k, (lo, hi) in allocation.intervals.items()},
        gpu=allocation.gpu,
        mfu=allocation.mfu,
        gpu_hours=allocation.gpu_hours,
        cost_usd=allocation.cost_usd,
        shape=allocation.shape.to_json(),
        law=allocation.law.to_json(),
        source=resolved.out,
        binding=list(allocation.binding),
        warnings=warnings,
        hyperparameters=HyperparametersOut.model_validate(
            hyperparameters_of(resolved.model, allocation, confidence).to_json()
        ),
    )


def hyperparameters_of(
    model: ExperimentModel, allocation: Allocation, confidence: float
) -> Hyperparameters:
    """Learning rate and batch size for the recommended run, with where the model's vocabulary
    and context came from."""
    answer = recommend_hyperparameters(
        shape=allocation.shape,
        tokens=allocation.tokens,
        flops=allocation.flops,
        fitted=model.fitted,
        context_tokens=model.context_tokens,
        flops_convention=model.flops_convention,
        confidence=confidence,
    )
    if model.fitted is None:
        no_sweeps = "no run reports a learning rate or batch size: the preset's rules answer"
        return replace(answer, notes=(*model.notes, no_sweeps, *answer.notes))
    return replace(answer, notes=(*model.notes, *answer.notes))


def current_answer_json(
    sessions: sessionmaker[Session],
    experiment_name: str,
    law: str,
    method: str,
    budget: BudgetSpec,
    constraints: ConstraintsSpec,
    confidence: float,
    cache: FitCache,
) -> bytes:
    """The recommendation from an experiment's fit in force, as JSON (in its own transaction)."""
    with session_scope(sessions) as session:
        experiment = experiment_store.get_by_name(session, experiment_name)
        resolved = resolve_current(session, experiment, law, method, cache)
        return answer(resolved, budget, constraints, confidence).model_dump_json().encode()
