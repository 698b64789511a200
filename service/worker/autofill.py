"""The autopilot: keep an experiment's recommendation at its target budget getting more certain,
within a compute budget, by planning and queueing runs whenever none are in flight."""

import math
from dataclasses import dataclass, replace

from sqlalchemy.orm import Session

from service.fits.cache import FitCache
from service.fits.service import FitPolicy, request_fit
from service.scaling import FlopBudget, InsufficientBudgetError, ScalingError, recommend
from service.schemas.jobs import AutofillSettings, PlanRequest
from service.store import experiments as experiment_store
from service.store import fits as fit_store
from service.store import jobs as job_store
from service.store.models import Experiment, Job
from service.worker.planning import current_fit, queue_plan

ORIGIN = "autofill"
MIN_RUNS_TO_FIT = 6


@dataclass(frozen=True)
class Status:
    state: str  # off | waiting | running | done | exhausted
    spent_flops: float
    remaining_flops: float | None
    n_opt_width: float | None
    message: str


def settings_of(experiment: Experiment) -> AutofillSettings | None:
    return AutofillSettings(**experiment.autofill) if experiment.autofill else None


def configure(session: Session, experiment: Experiment, settings: AutofillSettings) -> None:
    """Store the autopilot's settings (HTTP PUT and the dashboard's form)."""
    experiment.autofill = settings.model_dump(mode="json")
    session.flush()


def n_opt_width(
    session: Session, experiment: Experiment, target: float, cache: FitCache
) -> float | None:
    """log(high / low) of the 90% interval of N_opt(target) under the fit in force."""
    result = current_fit(session, experiment, cache)
    if result is None or not result.bootstrap_samples:
        return None
    interval = recommend(result, FlopBudget(target), confidence=0.9).intervals.get("params")
    return None if interval is None else math.log(interval[1] / interval[0])


def status(session: Session, experiment: Experiment, cache: FitCache) -> Status:
    settings = settings_of(experiment)
    spent = job_store.spent_flops(session, experiment.id, ORIGIN)
    if settings is None or not settings.enabled:
        return Status("off", spent, None, None, "the autopilot is off")
    remaining = max(settings.experiment_budget_flops - spent, 0.0)
    width = n_opt_width(session, experiment, settings.target_flops, cache)
    active = [job for job in experiment_jobs(session, experiment) if job.status in job_store.ACTIVE]
    if active:
        return Status("running", spent, remaining, width, f"{len(active)} job(s) in flight")
    if width is not None and width < settings.stop_when_n_opt_width_below:
        return Status(
            "done",
            spent,
            remaining,
            width,
            f"N_opt interval {width:.3f} is below {settings.stop_when_n_opt_width_below}",
        )
    if remaining < settings.min_flops_per_run:
        return Status("exhausted", spent, remaining, width, "the experiment budget is spent")
    return Status("waiting", spent, remaining, width, "ready to plan the next batch")


def experiment_jobs(session: Session, experiment: Experiment) -> list[Job]:
    return job_store.list_page(
        session, job_store.JobFilter(experiment_id=experiment.id, origin=ORIGIN), None, 1000
    )


def tick(session: Session, experiment: Experiment, policy: FitPolicy, cache: FitCache) -> str:
    """One step of the autopilot for one experiment; returns what it did."""
    settings = settings_of(experiment)
    now = status(session, experiment, cache)
    if settings is None or now.state != "waiting":
        return now.message
    current = fit_store.current(session, experiment.id, "chinchilla", "parametric")
    n_runs = experiment_store.run_counts(session, [experiment.id]).get(experiment.id, 0)
    stale = current is None or (current.data_version or 0) < experiment.data_version
    if n_runs >= MIN_RUNS_TO_FIT and stale:
        pending = fit_store.pending(session, experiment.id, "chinchilla", "parametric")
        if pending:
            return "waiting for a refit"
        try:
            request_fit(
                session,
                experiment,
                "chinchilla",
                "parametric",
                {
                    "huber_delta": 1e-3,
                    "bootstrap": settings.bootstrap,
                    "seed": 0,
                    "budget_tol": 0.1,
                    "include_excluded": False,
                    "filters": {},
                },
                # queued, never inline: the fit runner (here in the worker) takes it next tick
                replace(policy, inline_max_bootstrap=0),
            )
            return "queued a fit of the new runs"
        except ScalingError as exc:
            if current is not None:
                return f"cannot refit yet: {exc}"
    request = PlanRequest(
        target_flops=settings.target_flops,
        budget_flops=now.remaining_flops or 0.0,
        max_flops_per_run=min(settings.max_flops_per_run, now.remaining_flops or 0.0),
        min_flops_per_run=settings.min_flops_per_run,
        batch_size=settings.batch_size,
        overhead_flops=settings.overhead_flops,
    )
    try:
        queued = queue_plan(
            session, experiment, request, cache, ORIGIN, max_attempts=3, trainer=settings.trainer
        )
    except InsufficientBudgetError as exc:
        return f"cannot plan: {exc}"
    return f"queued {len(queued.jobs)} {queued.plan.phase} job(s)"
