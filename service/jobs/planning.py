"""Plans and jobs for an experiment: the planner (pure core) fed from the database.

The size contract: every job trains a shape of the trainer's family (service.scaling.
shape_family) for the experiment's vocabulary and context. A job stores what was asked
(`config.planned`) and what the trainer will build (`config.built`, the job's params, tokens and
flops): N is total parameters as trained, D the tokens the recipe will train (whole batches),
and FLOPs are 6 N D of those.
"""

from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import ValidationError
from sqlalchemy.orm import Session

from service.errors import ConflictError, InvalidInputError
from service.fits import data
from service.fits.cache import FitCache
from service.scaling import FitResult, Plan, PlannedRun, plan_runs, preset
from service.scaling.design_plan import Taken
from service.scaling.overhead import default_overhead
from service.scaling.shape_family import ShapeFamily
from service.schemas.fits import FitSettings
from service.schemas.jobs import JobRunSpec, PlanRequest
from service.store import fits as fit_store
from service.store import jobs as job_store
from service.store.models import Experiment, Job
from service.trainer.config import DEFAULT_CONTEXT_TOKENS, DEFAULT_VOCAB_SIZE, TrainConfig
from service.trainer.counts import param_counts
from service.trainer.errors import ConfigError
from service.trainer.recipe import make_plan as recipe_plan
from service.trainer.recipe import min_tokens
from service.trainer.schedule import make_branches


def current_fit(session: Session, experiment: Experiment, cache: FitCache) -> FitResult | None:
    """The experiment's parametric Chinchilla fit in force, if any (what the planner can use)."""
    row = fit_store.current(session, experiment.id, "chinchilla", "parametric")
    if row is None or row.result is None:
        return None
    stored = row.result
    return cache.get(row.id, row.runs_sha256 or "", lambda: FitResult.from_json(stored))


def autopilot_trainer(experiment: Experiment) -> dict[str, Any]:
    """The trainer fields of the experiment's autopilot settings (empty without any)."""
    trainer = (experiment.autofill or {}).get("trainer") or {}
    return dict(trainer) if isinstance(trainer, dict) else {}


def shape_family(trainer: dict[str, Any]) -> ShapeFamily:
    """The shapes the trainer builds with these fields: their vocabulary and context."""
    shape = trainer.get("shape") or {}
    if not isinstance(shape, dict):
        raise InvalidInputError("trainer.shape must be an object", field="trainer.shape")
    try:
        vocab = int(shape.get("vocab_size", DEFAULT_VOCAB_SIZE))
        context = int(shape.get("context_tokens", DEFAULT_CONTEXT_TOKENS))
        return ShapeFamily(vocab, context, min_tokens(context))
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"trainer.shape: {exc}", field="trainer.shape") from exc


def overhead_flops(given: float | None, trainer: dict[str, Any]) -> float:
    """The per-run overhead to plan with: as given, else the trainer's measured one on its
    device (service.scaling.overhead); none for "auto" or "mps", whose hardware the planner
    cannot know."""
    if given is not None:
        return given
    device = str(trainer.get("device") or "auto").split(":")[0]
    return default_overhead(device).flops if device in ("cpu", "cuda") else 0.0


def make_plan(
    session: Session,
    experiment: Experiment,
    request: PlanRequest,
    cache: FitCache,
    budget_flops: float | None = None,
    trainer: dict[str, Any] | None = None,
    widen: int = 0,
) -> Plan:
    """The planner's proposal, in the shape family of `trainer` (default: the request's, then
    the autopilot's trainer fields)."""
    runs = data.load(session, experiment.id, FitSettings(), "parametric").runs
    fields = trainer or request.trainer or autopilot_trainer(experiment)
    return plan_runs(
        runs,
        current_fit(session, experiment, cache),
        target_flops=request.target_flops,
        budget_left=budget_flops if budget_flops is not None else request.budget_flops,
        max_flops_per_run=request.max_flops_per_run,
        taken=job_store.active_sizes(session, experiment.id),
        batch_size=request.batch_size,
        overhead_flops=overhead_flops(request.overhead_flops, fields),
        prior=preset(request.prior).law,
        min_run_flops=request.min_flops_per_run,
        family=shape_family(fields),
        widen=widen,
        max_branches=request.max_branches_per_run,
        max_runs=request.max_runs,
    )


@dataclass(frozen=True)
class BuiltRun:
    """What the trainer will build for one requested run."""

    trainer: dict[str, Any]  # the trainer's TrainConfig as JSON
    shape: dict[str, int]
    params: float  # total, tied head counted once
    non_embedding_params: float
    tokens: float  # whole batches, as the recipe trains them
    # schedule wsd: the points' tokens (whole batches, ascending, the last = tokens) and the
    # tokens trained (the trunk once plus every cooldown); cosine: () and tokens
    branch_tokens: tuple[float, ...] = ()
    trained_tokens: float | None = None

    @property
    def flops(self) -> float:
        """6 N x the tokens really trained (a run with branches: Dk + f sum_{i<k} Di)."""
        return 6.0 * self.params * (self.trained_tokens or self.tokens)


def build_run(spec: JobRunSpec) -> BuiltRun:
    """Resolve a requested run to the shape and tokens the trainer will train.

    `spec.params` is total parameters, snapped to the nearest shape of the family; a full shape
    in `spec.trainer["shape"]` (n_layer, d_model, n_head) is built as given.
    """
    extra = dict(spec.trainer)
    shape = dict(extra.pop("shape", None) or {})
    if "n_layer" not in shape:  # the trainer's own sizing: the family shape nearest `params`
        shape["params"] = spec.params
    config = {**extra, "shape": shape, "tokens": max(1, round(spec.tokens)), "seed": spec.seed}
    try:
        built = TrainConfig.from_dict(config)
    except ConfigError as exc:
        raise InvalidInputError(f"trainer config: {exc}", field="trainer") from exc
    counts = param_counts(built.shape)
    plan = recipe_plan(built)
    branch_tokens: tuple[float, ...] = ()
    trained_tokens: float | None = None
    if built.schedule == "wsd":
        try:
            branches = make_branches(built, plan)
        except ConfigError as exc:
            raise InvalidInputError(f"trainer config: {exc}", field="trainer") from exc
        step = plan.batch_tokens
        branch_tokens = tuple(float(b.end_step * step) for b in branches)
        # as the trainer will train them: whole batches (the same steps again)
        config["branch_tokens"] = [b.end_step * step for b in branches]
        trained_steps = branches[-1].end_step + sum(b.cooldown_steps for b in branches[:-1])
        trained_tokens = float(trained_steps * step)
    full_shape = {
        "n_layer": built.shape.n_layer,
        "d_model": built.shape.d_model,
        "n_head": built.shape.n_head,
        "context_tokens": built.shape.context_tokens,
        "vocab_size": built.shape.vocab_size,
    }
    return BuiltRun(
        trainer={**config, "shape": full_shape},
        shape=full_shape,
        params=float(counts.total_params),
        non_embedding_params=float(counts.non_embedding_params),
        tokens=branch_tokens[-1] if branch_tokens else float(plan.tokens),
        branch_tokens=branch_tokens,
        trained_tokens=trained_tokens,
    )


def queue_runs(
    session: Session,
    experiment: Experiment,
    specs: list[JobRunSpec],
    origin: str,
    max_attempts: int,
) -> list[Job]:
    """Queue one job per spec; refuse (409) any whose built shape and tokens repeat a stored
    run, an active job or another spec."""
    known = data.load(session, experiment.id, FitSettings(include_excluded=True), "parametric").runs
    taken = Taken(
        [
            *zip(known.params.tolist(), known.tokens.tolist(), strict=True),
            *job_store.active_sizes(session, experiment.id),
        ]
    )
    built = [build_run(spec) for spec in specs]
    duplicates = []
    for index, run in enumerate(built):
        if bool(taken.clashes(np.log([run.params]), np.log([run.tokens]))[0]):
            duplicates.append(
                {"row": index, "params": run.params, "tokens": run.tokens, "shape": run.shape}
            )
        taken.add(run.params, run.tokens)
    if duplicates:
        raise ConflictError(
            f"{len(duplicates)} run(s) repeat a stored run, an active job or each other "
            "(same built shape and tokens)",
            duplicates=duplicates,
        )
    return [
        job_store.queue(
            session,
            experiment,
            run.params,
            run.tokens,
            {
                "trainer": run.trainer,
                "planned": {
                    "params": spec.params,
                    "tokens": spec.tokens,
                    "flops": 6.0 * spec.params * spec.tokens,
                },
                "built": {
                    "shape": run.shape,
                    "params": run.params,
                    "non_embedding_params": run.non_embedding_params,
                    "tokens": run.tokens,
                    "flops": run.flops,
                    **({"branch_tokens": list(run.branch_tokens)} if run.branch_tokens else {}),
                },
            },
            origin,
            max_attempts,
            flops=run.flops,
        )
        for spec, run in zip(specs, built, strict=True)
    ]


def _run_fields(run: PlannedRun, fields: dict[str, Any]) -> dict[str, Any]:
    """The trainer fields of a planned run: a run with several points is a WSD trunk with a
    cooldown branch per point; a branch the trainer cannot make (its cooldown would start in
    the warmup) is left out, shortest first."""
    if not run.branch_tokens:
        return fields
    branches = [max(1, round(tokens)) for tokens in run.branch_tokens]
    wsd = {**fields, "schedule": "wsd", "cooldown_fraction": run.cooldown_fraction}
    while len(branches) > 1:
        try:
            build_run(
                JobRunSpec(
                    params=run.params, tokens=run.tokens, trainer={**wsd, "branch_tokens": branches}
                )
            )
            break
        except (InvalidInputError, ValidationError):
            branches = branches[1:]
    if len(branches) == 1:
        return fields
    return {**wsd, "branch_tokens": branches}


@dataclass(frozen=True)
class QueuedPlan:
    plan: Plan
    jobs: list[Job]


def queue_plan(
    session: Session,
    experiment: Experiment,
    request: PlanRequest,
    cache: FitCache,
    origin: str,
    max_attempts: int,
    budget_flops: float | None = None,
    trainer: dict[str, Any] | None = None,
    widen: int = 0,
) -> QueuedPlan:
    fields = trainer or request.trainer or autopilot_trainer(experiment)
    plan = make_plan(session, experiment, request, cache, budget_flops, fields, widen)
    try:
        specs = [
            JobRunSpec(
                params=run.params, tokens=run.tokens, seed=0, trainer=_run_fields(run, fields)
            )
            for run in plan.runs
        ]
    except ValidationError as exc:  # e.g. a run of 1e38 FLOPs wants more tokens than a job takes
        error = exc.errors()[0]
        raise InvalidInputError(
            f"the plan has runs no job can train ({error['loc'][0]}: {error['msg']}); lower "
            "max_flops_per_run",
            field="plan.max_flops_per_run",
        ) from exc
    jobs = queue_runs(session, experiment, specs, origin, max_attempts)
    for job, run in zip(jobs, plan.runs, strict=True):
        job.config = {**job.config, "plan": {"phase": plan.phase, "reason": run.reason}}
    return QueuedPlan(plan, jobs)
