"""Emitting events into the outbox, in the transaction of the change they report.

Nothing is written when nobody subscribed. Each event goes to every matching subscription as
its own delivery row; the worker sends them (service/webhooks/delivery.py).
"""

import math
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
import structlog
from sqlalchemy.orm import Session

from service.scaling import FitResult, FlopBudget, ScalingError, recommend
from service.store import fits as fit_store
from service.store import webhooks as store
from service.store.models import Experiment, Fit, Job, WebhookEvent, WebhookSubscription

log = structlog.get_logger(__name__)
# Intervals of the watched answers, as the autopilot's (service/jobs/autofill.py).
CONFIDENCE = 0.9
# Without a previous interval (a fit without bootstrap), a move counts past this ratio.
MOVE_RATIO_WITHOUT_INTERVAL = 1.1
WATCHED = ("params", "tokens")


def emit(
    session: Session,
    event_type: str,
    experiment: Experiment | None,
    data: dict[str, Any],
    subscriptions: list[WebhookSubscription] | None = None,
) -> WebhookEvent | None:
    """Write `event_type` for the matching subscriptions (or those given); None if none."""
    if subscriptions is None:
        subscriptions = store.subscribers(
            session, event_type, experiment.id if experiment is not None else None
        )
    if not subscriptions:
        return None
    name = experiment.name if experiment is not None else None
    return store.add_event(session, event_type, name, data, subscriptions, datetime.now(UTC))


def _fit_data(fit_row: Fit) -> dict[str, Any]:
    result = fit_row.result or {}
    return {
        "fit_id": fit_row.id,
        "law": fit_row.law,
        "method": fit_row.method,
        "trigger": fit_row.trigger,
        "status": fit_row.status,
        "n_runs": fit_row.n_runs,
        "data_version": fit_row.data_version,
        "estimates": result.get("estimates"),
        "intervals_95": result.get("intervals_95"),
        "rmse_log_loss": result.get("rmse_log_loss"),
        "error": fit_row.error,
        "finished_at": fit_row.finished_at.isoformat() if fit_row.finished_at else None,
    }


def fit_succeeded(session: Session, fit_row: Fit, result: FitResult) -> None:
    """`fit.succeeded`, and `recommendation.changed` for each watched budget whose answer moved
    beyond the previous fit's interval."""
    experiment = fit_row.experiment
    emit(session, "fit.succeeded", experiment, _fit_data(fit_row))
    watchers = store.subscribers(session, "recommendation.changed", experiment.id)
    if watchers:
        _recommendation_changed(session, fit_row, result, watchers)


def fit_failed(session: Session, fit_row: Fit) -> None:
    emit(session, "fit.failed", fit_row.experiment, _fit_data(fit_row))


def job_finished(session: Session, job: Job) -> None:
    emit(
        session,
        "job.finished",
        job.experiment,
        {
            "job_id": job.id,
            "status": job.status,
            "origin": job.origin,
            "params": job.params,
            "tokens": job.tokens,
            "flops": job.flops,
            "attempts": job.attempts,
            "error": job.error,
            "result_run_id": job.result_run_id,
            "finished_at": job.finished_at.isoformat() if job.finished_at else None,
        },
    )


def autopilot_state_changed(
    session: Session, experiment: Experiment, previous: str | None, state: str, message: str
) -> None:
    emit(
        session,
        "autopilot.state_changed",
        experiment,
        {"previous_state": previous, "state": state, "message": message},
    )


def _previous_fit(session: Session, fit_row: Fit) -> Fit | None:
    """The fit that was in force before this one: same law and method, succeeded, older."""
    return session.scalar(
        sa.select(Fit)
        .where(
            Fit.experiment_id == fit_row.experiment_id,
            Fit.law == fit_row.law,
            Fit.method == fit_row.method,
            fit_store.status_is("succeeded"),
            Fit.id < fit_row.id,
        )
        .order_by(Fit.id.desc())
        .limit(1)
    )


def watched_budgets(subscription: WebhookSubscription, experiment: Experiment) -> list[float]:
    """The FLOP budgets a subscription watches: its own, else the autopilot's target."""
    if subscription.watch_flops:
        # float(): PostgreSQL's JSONB writes 1e21 as an integer, and reads it back as one.
        return [float(flops) for flops in subscription.watch_flops]
    target = (experiment.autofill or {}).get("target_flops")
    return [float(target)] if target else []


def moved(
    previous: dict[str, float],
    previous_intervals: dict[str, tuple[float, float]],
    current: dict[str, float],
) -> list[str]:
    """The watched quantities (params, tokens) whose new value left the previous interval; a
    quantity without one moved when it changed by more than MOVE_RATIO_WITHOUT_INTERVAL."""
    out = []
    for name in WATCHED:
        value = current[name]
        interval = previous_intervals.get(name)
        if interval is not None:
            if not interval[0] <= value <= interval[1]:
                out.append(name)
        elif abs(math.log(value / previous[name])) > math.log(MOVE_RATIO_WITHOUT_INTERVAL):
            out.append(name)
    return out


def _answer(source: FitResult, flops: float) -> tuple[dict[str, float], dict[str, Any]] | None:
    try:
        allocation = recommend(source, FlopBudget(flops), confidence=CONFIDENCE)
    except ScalingError:
        return None  # a law that cannot answer at this budget: nothing to compare
    except Exception:  # a bug here must not fail the fit it reports on
        log.exception("recommendation_watch_failed", budget_flops=flops)
        return None
    values = {"params": allocation.params, "tokens": allocation.tokens, "loss": allocation.loss}
    return values, {k: [lo, hi] for k, (lo, hi) in allocation.intervals.items()}


def _recommendation_changed(
    session: Session, fit_row: Fit, result: FitResult, watchers: list[WebhookSubscription]
) -> None:
    experiment = fit_row.experiment
    by_budget: dict[float, list[WebhookSubscription]] = {}
    for subscription in watchers:
        for flops in watched_budgets(subscription, experiment):
            by_budget.setdefault(flops, []).append(subscription)
    if not by_budget:
        return
    previous_row = _previous_fit(session, fit_row)
    if previous_row is None or previous_row.result is None:
        return  # a first answer is not a change; fit.succeeded reports it
    previous_result = FitResult.from_json(previous_row.result)
    for flops, subscriptions in sorted(by_budget.items()):
        before = _answer(previous_result, flops)
        after = _answer(result, flops)
        if before is None or after is None:
            continue
        intervals = {k: (v[0], v[1]) for k, v in before[1].items()}
        changed = moved(before[0], intervals, after[0])
        if not changed:
            continue
        emit(
            session,
            "recommendation.changed",
            experiment,
            {
                "budget_flops": flops,
                "law": fit_row.law,
                "method": fit_row.method,
                "confidence": CONFIDENCE,
                "moved": changed,
                "fit_id": fit_row.id,
                "previous_fit_id": previous_row.id,
                "previous": {**before[0], "intervals": before[1]},
                "current": {**after[0], "intervals": after[1]},
            },
            subscriptions,
        )
        log.info("recommendation_changed", experiment=experiment.name, budget_flops=flops)
