"""Plans and jobs for an experiment: the planner (pure core) fed from the database."""

from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from service.errors import ConflictError
from service.fits import data
from service.fits.cache import FitCache
from service.scaling import FitResult, Plan, plan_runs, preset

# The planner's own rule (within 2% in both params and tokens), so plans never clash here.
from service.scaling.design_plan import Taken
from service.schemas.jobs import JobRunSpec, PlanRequest
from service.store import fits as fit_store
from service.store import jobs as job_store
from service.store.models import Experiment, Job


def current_fit(session: Session, experiment: Experiment, cache: FitCache) -> FitResult | None:
    """The experiment's parametric Chinchilla fit in force, if any (what the planner can use)."""
    row = fit_store.current(session, experiment.id, "chinchilla", "parametric")
    if row is None or row.result is None:
        return None
    stored = row.result
    return cache.get(row.id, row.runs_sha256 or "", lambda: FitResult.from_json(stored))


def make_plan(
    session: Session,
    experiment: Experiment,
    request: PlanRequest,
    cache: FitCache,
    budget_flops: float | None = None,
) -> Plan:
    runs = data.load(session, experiment.id, {"filters": {}}, "parametric").runs
    return plan_runs(
        runs,
        current_fit(session, experiment, cache),
        target_flops=request.target_flops,
        budget_left=budget_flops if budget_flops is not None else request.budget_flops,
        max_flops_per_run=request.max_flops_per_run,
        taken=job_store.active_sizes(session, experiment.id),
        batch_size=request.batch_size,
        overhead_flops=request.overhead_flops,
        prior=preset(request.prior).law,
        min_run_flops=request.min_flops_per_run,
    )


def trainer_config(spec: JobRunSpec) -> dict[str, Any]:
    """The trainer's config for a job: a model of about `params` non-embedding parameters
    trained on `tokens` tokens (the run records the exact counts it reached); `spec.trainer`
    adds fields; its `shape` entry is either a full shape or extra fields (context_tokens)."""
    extra = dict(spec.trainer)
    shape = dict(extra.pop("shape", {}))
    if "n_layer" not in shape:  # not a full shape: the trainer sizes the model to `params`
        shape["non_embedding_params"] = spec.params
    return {"trainer": {**extra, "shape": shape, "tokens": int(spec.tokens), "seed": spec.seed}}


def queue_runs(
    session: Session,
    experiment: Experiment,
    specs: list[JobRunSpec],
    origin: str,
    max_attempts: int,
) -> list[Job]:
    """Queue one job per spec; refuse (409) any that repeats a stored run or an active job."""
    known = data.load(session, experiment.id, {"include_excluded": True}, "parametric").runs
    taken = Taken(
        [
            *zip(known.params.tolist(), known.tokens.tolist(), strict=True),
            *job_store.active_sizes(session, experiment.id),
        ]
    )
    duplicates = []
    for index, spec in enumerate(specs):
        logs = np.log([spec.params]), np.log([spec.tokens])
        if bool(taken.clashes(*logs)[0]):
            duplicates.append({"row": index, "params": spec.params, "tokens": spec.tokens})
        taken.add(spec.params, spec.tokens)
    if duplicates:
        raise ConflictError(
            f"{len(duplicates)} run(s) repeat a stored run, an active job or each other",
            duplicates=duplicates,
        )
    return [
        job_store.queue(
            session,
            experiment,
            spec.params,
            spec.tokens,
            trainer_config(spec),
            origin,
            max_attempts,
        )
        for spec in specs
    ]


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
) -> QueuedPlan:
    plan = make_plan(session, experiment, request, cache, budget_flops)
    specs = [
        JobRunSpec(params=run.params, tokens=run.tokens, seed=index, trainer=trainer or {})
        for index, run in enumerate(plan.runs)
    ]
    jobs = queue_runs(session, experiment, specs, origin, max_attempts)
    for job, run in zip(jobs, plan.runs, strict=True):
        job.config = {**job.config, "plan": {"phase": plan.phase, "reason": run.reason}}
    return QueuedPlan(plan, jobs)
