"""Recommendations: resolve the source (current fit, fit id, preset), then ask the core."""

from dataclasses import dataclass, field, replace
from typing import Literal

from sqlalchemy.orm import Session, sessionmaker

from service.db import Reader, read_connection
from service.envelope import body_of
from service.errors import InvalidInputError, NotFoundError
from service.fits.cache import FitCache, Lru
from service.fits.hyperparams import ExperimentModel, experiment_model
from service.fits.shared_reads import SharedReads
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
    ScalingError,
    TargetLoss,
    preset,
    recommend,
)
from service.scaling.allocate import Allocation, ModelSize, UniqueData
from service.scaling.compare import Candidate, ComparedRow, compare
from service.scaling.hyperparams import Hyperparameters, recommend_hyperparameters
from service.scaling.shapes import DEFAULT_VOCAB_SIZE
from service.schemas.recommendations import (
    BudgetSpec,
    CompareRequest,
    CompareRow,
    Comparison,
    ConstraintsSpec,
    Disagreement,
    EqualLossOptimum,
    HyperparametersOut,
    Interval,
    Recommendation,
    SourceOut,
    SourceSpec,
    Spread,
)
from service.store import experiments as experiment_store
from service.store import fits as fit_store
from service.store.facts import AnyExperiment, AnyFit
from service.store.models import Experiment

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
    preset); params_convention: the experiment's (fits) or the preset's; data: where the loss is
    measured (the experiment's name, or the preset's data set)."""

    source: FitResult | Preset
    out: SourceOut
    model: ExperimentModel = field(default_factory=ExperimentModel)
    params_convention: Literal["total", "non-embedding"] = "total"
    data: str | None = None

    def same_as(self, other: "ResolvedSource") -> bool:
        """Whether every answer computed from `other` is this source's answer: the same loaded
        fit and sweeps' fit (one object each while the fit cache keeps them) and equal
        descriptions (fit id, staleness, the experiment's vocabulary and context)."""
        return (
            self.source is other.source
            and self.model.fitted is other.model.fitted
            and replace(self.model, fitted=None) == replace(other.model, fitted=None)
            and (self.out, self.params_convention, self.data)
            == (other.out, other.params_convention, other.data)
        )


def resolve_fit(
    reader: Reader, fit_row: AnyFit, experiment: AnyExperiment, cache: FitCache
) -> ResolvedSource:
    """A stored, succeeded fit as a source of answers, with its experiment's model."""
    if fit_row.status != "succeeded":
        raise InvalidInputError(
            f"fit {fit_row.id} is {fit_row.status}; only a succeeded fit can answer",
            fit_id=fit_row.id,
            status=fit_row.status,
        )

    def load() -> FitResult:
        stored = fit_store.result_of(reader, fit_row.id)
        assert stored is not None
        return FitResult.from_json(stored)

    loaded = cache.get(fit_row.id, fit_row.runs_sha256 or "", load)
    stale = is_stale(fit_row, experiment)
    return ResolvedSource(
        loaded,
        SourceOut(kind="fit", fit_id=fit_row.id, experiment=experiment.name, stale=stale),
        experiment_model(reader, experiment, cache),
        params_convention="non-embedding"
        if experiment.param_convention == "non_embedding"
        else "total",
        data=f"experiment {experiment.name}",
    )


def resolve(session: Session, spec: SourceSpec, cache: FitCache) -> ResolvedSource:
    if spec.preset is not None:
        published = preset(spec.preset)
        return ResolvedSource(
            published,
            SourceOut(kind="preset", preset=spec.preset),
            PRESET_MODEL,
            params_convention="non-embedding"
            if published.params_convention == "non-embedding"
            else "total",
            data=published.data or None,
        )
    if spec.fit_id is not None:
        fit_row = fit_store.get(session, spec.fit_id)
        return resolve_fit(session, fit_row, fit_row.experiment, cache)
    assert spec.experiment is not None
    experiment = experiment_store.get_by_name(session, spec.experiment)
    return resolve_current(session, experiment, spec.law, spec.method, cache)


def resolve_current(
    session: Session, experiment: Experiment, law: str, method: str, cache: FitCache
) -> ResolvedSource:
    """The experiment's fit in force for this law and method."""
    current = fit_store.current(session, experiment.id, law, method)
    return _resolve_in_force(session, experiment, current, law, method, cache)


def _resolve_in_force(
    reader: Reader,
    experiment: AnyExperiment,
    current: AnyFit | None,
    law: str,
    method: str,
    cache: FitCache,
) -> ResolvedSource:
    if current is None:
        raise NotFoundError(
            f"experiment {experiment.name!r} has no {method} {law} fit yet: "
            f"POST /v1/experiments/{experiment.name}/fits",
            experiment=experiment.name,
            law=law,
            method=method,
        )
    return resolve_fit(reader, current, experiment, cache)


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
    if spec.params is not None:
        return ModelSize(spec.params, hardware)
    if spec.tokens is not None:
        return UniqueData(spec.tokens, hardware)
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
    return recommendation_of(allocation, resolved)


def recommendation_of(allocation: Allocation, resolved: ResolvedSource) -> Recommendation:
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
            hyperparameters_of(resolved.model, allocation, allocation.confidence).to_json()
        ),
        notes=list(allocation.notes),
        total_flops=allocation.total_flops,
        equal_loss_optimum=None
        if allocation.equal_loss_optimum is None
        else EqualLossOptimum.model_validate(allocation.equal_loss_optimum.to_json()),
    )


def label_of(spec: SourceSpec) -> str:
    if spec.preset is not None:
        return spec.preset
    if spec.fit_id is not None:
        return f"fit {spec.fit_id}"
    return f"{spec.experiment} ({spec.law}, {spec.method})"


def _row(spec: SourceSpec, label: str, row: ComparedRow, resolved: ResolvedSource) -> CompareRow:
    return CompareRow(
        source=spec,
        label=label,
        recommendation=None
        if row.allocation is None
        else recommendation_of(row.allocation, resolved),
        error=None if row.error is None else body_of(row.error),
        params_convention=row.params_convention,
        flops_convention=row.flops_convention,
        conventions=row.conventions,
    )


def comparison(session: Session, body: CompareRequest, cache: FitCache) -> Comparison:
    """Each source side by side at one budget, and the disagreement between them."""
    labels: list[str] = []
    for spec in body.sources:
        label = label_of(spec)
        while label in labels:  # the same source twice: name them apart
            label += "'"
        labels.append(label)
    resolved: dict[str, ResolvedSource] = {}
    failed: dict[str, CompareRow] = {}
    for spec, label in zip(body.sources, labels, strict=True):
        try:
            resolved[label] = resolve(session, spec, cache)
        # An unknown fit or experiment, like a law that cannot answer, is one source's answer.
        except (ScalingError, NotFoundError, InvalidInputError) as exc:
            failed[label] = CompareRow(source=spec, label=label, error=body_of(exc))
    result = compare(
        [
            Candidate(label, r.source, params_convention=r.params_convention, data=r.data)
            for label, r in resolved.items()
        ],
        budget_of(body.budget),
        constraints=Constraints(**body.constraints.model_dump()),
        confidence=body.confidence,
    )
    answered = {row.label: row for row in result.rows}
    rows = [
        failed[label] if label in failed else _row(spec, label, answered[label], resolved[label])
        for spec, label in zip(body.sources, labels, strict=True)
    ]
    d = result.disagreement
    return Comparison(
        rows=rows,
        disagreement=Disagreement(
            answered=d.answered,
            spreads={k: Spread.model_validate(vars(v)) for k, v in d.spreads.items()},
            caveats=list(d.caveats),
            statement=d.statement,
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
    *,
    shared: SharedReads[ResolvedSource] | None = None,
    asked: int = 0,
    computed: Lru[tuple[ResolvedSource, bytes]] | None = None,
) -> bytes:
    """The recommendation from an experiment's fit in force, as JSON (read on a connection of
    its own, in autocommit). With `shared`, question number `asked` takes the fit in force from
    a read that began after it was asked, if the answer thread has one (`SharedReads`). With
    `computed`, the answer last computed for the same question is reused when the fit in force
    just read is the same source it came from (`ResolvedSource.same_as`): the read still happens
    for every question, the computation only when something changed."""

    def read() -> ResolvedSource:
        with read_connection(sessions) as connection:
            found = fit_store.experiment_and_current(connection, experiment_name, law, method)
            if found is not None:
                experiment, current = found
                return _resolve_in_force(connection, experiment, current, law, method, cache)
            # get_by_name raises with a did-you-mean hint (or finds one just made)
            with sessions(bind=connection) as session:
                orm_experiment = experiment_store.get_by_name(session, experiment_name)
                return resolve_current(session, orm_experiment, law, method, cache)

    key = (experiment_name, law, method)
    resolved = read() if shared is None else shared.read(asked, key, read)

    def compute() -> tuple[ResolvedSource, bytes]:
        found = answer(resolved, budget, constraints, confidence)
        return resolved, found.model_dump_json().encode()

    if computed is None:
        return compute()[1]
    question = (key, budget.model_dump_json(), constraints.model_dump_json(), confidence)
    return computed.get(question, compute, usable=lambda kept: kept[0].same_as(resolved))[1]
