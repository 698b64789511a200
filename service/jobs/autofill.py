"""The autopilot: keep an experiment's recommendation at its target budget getting more certain,
within a compute budget, by planning and queueing runs whenever none are in flight.

It never loops on a failure: a fit that failed is not requested again until the runs change; a
fit that failed for lack of spread in N or D gets a wider design (up to ``MAX_WIDEN`` times);
anything else it cannot cure stops it as ``blocked`` (or ``exhausted``) with the reason, kept in
``experiments.autofill_state`` for the data version it was decided on.
"""

import math
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy.orm import Session

from service.fits.cache import FitCache
from service.fits.service import FitPolicy, request_fit
from service.fits.staleness import is_stale
from service.jobs.planning import current_fit, queue_plan
from service.scaling import FlopBudget, InsufficientBudgetError, ScalingError, recommend
from service.schemas.fits import FitSettings
from service.schemas.jobs import AutofillSettings, PlanRequest
from service.store import experiments as experiment_store
from service.store import fits as fit_store
from service.store import jobs as job_store
from service.store import webhooks as webhook_store
from service.store.models import Experiment, Fit, Job
from service.webhooks import events as webhook_events

ORIGIN = "autofill"
MIN_RUNS_TO_FIT = 6
# Fit errors that more spread in N or D can cure: the planner widens the design.
WIDENABLE = frozenset(
    {"exponent_at_bound", "degenerate_data", "insufficient_data", "no_scaling_law"}
)
MAX_WIDEN = 2
# This many of its latest jobs failing in a row stops the autopilot (a broken trainer).
MAX_FAILED_IN_A_ROW = 3


@dataclass(frozen=True)
class Status:
    state: str  # off | waiting | running | blocked | done | exhausted
    spent_flops: float
    remaining_flops: float | None
    n_opt_width: float | None
    message: str
    runs: int  # jobs queued, running or succeeded: what the run cap counts
    remaining_runs: int | None  # under the run cap; None: no cap


def settings_of(experiment: Experiment) -> AutofillSettings | None:
    return AutofillSettings(**experiment.autofill) if experiment.autofill else None


def configure(session: Session, experiment: Experiment, settings: AutofillSettings) -> None:
    """Store the autopilot's settings (HTTP PUT and the dashboard's form); new settings clear
    a stop decided under the old ones, and jobs that failed under them no longer count."""
    experiment.autofill = settings.model_dump(mode="json")
    jobs = experiment_jobs(session, experiment)
    reported = (experiment.autofill_state or {}).get("notified_state")
    experiment.autofill_state = {
        "since_job": max((job.id for job in jobs), default=0),
        "notified_state": reported,
    }
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


def failed_fit(session: Session, experiment: Experiment) -> Fit | None:
    """The last parametric fit, if it failed on the runs the experiment has now."""
    last = fit_store.latest_finished(session, experiment.id, "chinchilla", "parametric")
    if last is None or last.status != "failed":
        return None
    return last if last.data_version == experiment.data_version else None


def _fit_error(fit_row: Fit) -> tuple[str, str]:
    error: dict[str, Any] = fit_row.error or {}
    return str(error.get("code", "fit_failed")), str(error.get("message", "the fit failed"))


def _stopped(experiment: Experiment) -> dict[str, Any] | None:
    state = experiment.autofill_state or {}
    if "state" in state and state.get("data_version") == experiment.data_version:
        return state
    return None


def _widen_rounds(jobs: list[Job]) -> int:
    return max((int((job.config.get("plan") or {}).get("widen", 0)) for job in jobs), default=0)


def status(
    session: Session, experiment: Experiment, cache: FitCache, jobs: list[Job] | None = None
) -> Status:
    """Where the autopilot stands; `jobs` are its jobs when the caller has them already."""
    settings = settings_of(experiment)
    started = job_store.started(session, experiment.id, ORIGIN)
    spent, runs = started.flops, started.runs
    if settings is None or not settings.enabled:
        return Status("off", spent, None, None, "the autopilot is off", runs, None)
    remaining = max(settings.experiment_budget_flops - spent, 0.0)
    cap = settings.experiment_max_runs
    runs_left = None if cap is None else max(cap - runs, 0)
    width = n_opt_width(session, experiment, settings.target_flops, cache)

    def now(state: str, message: str) -> Status:
        return Status(state, spent, remaining, width, message, runs, runs_left)

    if jobs is None:
        jobs = experiment_jobs(session, experiment)
    active = [job for job in jobs if job.status in job_store.ACTIVE]
    if active:
        return now("running", f"{len(active)} job(s) in flight")
    if width is not None and width < settings.stop_when_n_opt_width_below:
        return now(
            "done", f"N_opt interval {width:.3f} is below {settings.stop_when_n_opt_width_below}"
        )
    stopped = _stopped(experiment)
    if stopped is not None:
        return now(stopped["state"], stopped["message"])
    if remaining < settings.min_flops_per_run:
        return now("exhausted", "the experiment budget is spent")
    if runs_left == 0:
        return now("exhausted", f"the run cap is spent ({runs} of {cap} runs)")
    failure = failed_fit(session, experiment)
    if failure is not None:
        code, message = _fit_error(failure)
        return now("waiting", f"fit {failure.id} failed ({code}: {message}); next: a wider design")
    return now("waiting", "ready to plan the next batch")


def notify_state(session: Session, experiment: Experiment, cache: FitCache) -> None:
    """`autopilot.state_changed` when the state differs from the one last reported (the state
    is derived from jobs, fits and settings, so the worker compares it at each tick)."""
    if not webhook_store.subscribers(session, "autopilot.state_changed", experiment.id):
        return
    now = status(session, experiment, cache)
    stored = experiment.autofill_state or {}
    previous = stored.get("notified_state")
    if previous == now.state:
        return
    experiment.autofill_state = {**stored, "notified_state": now.state}
    webhook_events.autopilot_state_changed(session, experiment, previous, now.state, now.message)


def experiment_jobs(session: Session, experiment: Experiment) -> list[Job]:
    return job_store.list_page(
        session, job_store.JobFilter(experiment_id=experiment.id, origin=ORIGIN), None, 1000
    )


def _stop(experiment: Experiment, state: str, message: str) -> str:
    """Stop on the current data: the reason stays until the runs or the settings change."""
    experiment.autofill_state = {
        **(experiment.autofill_state or {}),
        "state": state,
        "message": message,
        "data_version": experiment.data_version,
    }
    return message


def tick(session: Session, experiment: Experiment, policy: FitPolicy, cache: FitCache) -> str:
    """One step of the autopilot for one experiment; returns what it did."""
    settings = settings_of(experiment)
    jobs = experiment_jobs(session, experiment)
    now = status(session, experiment, cache, jobs)
    if settings is None or now.state != "waiting":
        return now.message
    since = int((experiment.autofill_state or {}).get("since_job", 0))
    finished = [job for job in jobs if job.id > since and job.status in ("succeeded", "failed")]
    recent = finished[:MAX_FAILED_IN_A_ROW]  # newest first
    if len(recent) == MAX_FAILED_IN_A_ROW and all(job.status == "failed" for job in recent):
        return _stop(
            experiment,
            "blocked",
            f"its last {MAX_FAILED_IN_A_ROW} jobs failed (job {recent[0].id}: {recent[0].error}); "
            "fix the trainer or its settings, then set the autopilot again",
        )
    failure = failed_fit(session, experiment)
    widen = 0
    if failure is not None:
        code, message = _fit_error(failure)
        rounds = _widen_rounds(jobs)
        if code not in WIDENABLE:
            return _stop(
                experiment,
                "blocked",
                f"fit {failure.id} failed ({code}: {message}); more runs of the same kind will "
                "not cure this: add or exclude runs, or change the settings",
            )
        if rounds >= MAX_WIDEN:
            return _stop(
                experiment,
                "blocked",
                f"fit {failure.id} failed ({code}: {message}) after {rounds} wider designs; "
                "stopped: these runs do not follow a Chinchilla law here",
            )
        widen = rounds + 1
    else:
        current = fit_store.current(session, experiment.id, "chinchilla", "parametric")
        n_runs = experiment_store.run_counts(session, [experiment.id]).get(experiment.id, 0)
        if n_runs >= MIN_RUNS_TO_FIT and (current is None or is_stale(current, experiment)):
            if fit_store.pending(session, experiment.id, "chinchilla", "parametric"):
                return "waiting for a refit"
            try:
                request_fit(
                    session,
                    experiment,
                    "chinchilla",
                    "parametric",
                    FitSettings(bootstrap=settings.bootstrap),
                    # queued, never inline: the fit runner (here in the worker) takes it next
                    replace(policy, inline_max_bootstrap=0),
                )
                return "queued a fit of the new runs"
            except ScalingError as exc:
                if current is not None:
                    return _stop(experiment, "blocked", f"cannot refit: {exc}")
    left = now.remaining_flops or 0.0
    request = PlanRequest(
        target_flops=settings.target_flops,
        budget_flops=left,
        max_flops_per_run=min(settings.max_flops_per_run, left),
        min_flops_per_run=settings.min_flops_per_run,
        batch_size=settings.batch_size,
        overhead_flops=settings.overhead_flops,
        max_branches_per_run=settings.max_branches_per_run,
        max_runs=now.remaining_runs,
        trainer=settings.trainer,
    )
    try:
        queued = queue_plan(session, experiment, request, cache, ORIGIN, 3, widen=widen)
    except (InsufficientBudgetError, ScalingError) as exc:
        return _stop(experiment, "exhausted", f"cannot plan another run: {exc}")
    if not queued.jobs:
        return _stop(
            experiment,
            "exhausted",
            "no run fits the budget left or adds information: " + "; ".join(queued.plan.notes),
        )
    for job in queued.jobs:
        job.config = {**job.config, "plan": {**job.config["plan"], "widen": widen}}
    return f"queued {len(queued.jobs)} {queued.plan.phase} job(s)" + (
        f" (wider design, round {widen})" if widen else ""
    )
