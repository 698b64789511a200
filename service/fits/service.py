"""Fitting an experiment: inline for small fits, queued for large ones, refits when data moves."""

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.orm import Session

from service import __version__
from service.errors import FitTimeoutError
from service.fits import data
from service.metrics import observe_fit_duration
from service.scaling import FitResult, fit
from service.scaling.fit import Progress
from service.schemas.fits import FitSettings
from service.settings import Settings
from service.store import fits as store
from service.store.models import Experiment, Fit
from service.webhooks import events as webhook_events


@dataclass(frozen=True)
class FitPolicy:
    inline_max_bootstrap: int
    refit_debounce: timedelta
    lease: timedelta
    timeout_seconds: float = 600.0
    code_version: str = __version__
    # Told the experiment's name after a commit that changed its runs or its fits.
    on_change: Callable[[str], None] | None = None
    # Inline fits computing at once in this process; the rest are queued (202).
    inline_slots: threading.Semaphore = field(
        default_factory=lambda: threading.BoundedSemaphore(2), compare=False
    )

    @classmethod
    def from_settings(
        cls, settings: Settings, on_change: Callable[[str], None] | None = None
    ) -> "FitPolicy":
        return cls(
            inline_max_bootstrap=settings.fit_inline_max_bootstrap,
            refit_debounce=timedelta(seconds=settings.refit_debounce_seconds),
            lease=timedelta(seconds=settings.fit_lease_seconds),
            timeout_seconds=settings.fit_timeout_seconds,
            on_change=on_change,
            inline_slots=threading.BoundedSemaphore(settings.fit_inline_max_concurrent),
        )

    def notify_after_commit(self, session: Session, experiment_name: str) -> None:
        on_change = self.on_change
        if on_change is not None:
            sa.event.listen(
                session, "after_commit", lambda _: on_change(experiment_name), once=True
            )


# Laws whose bootstrap is a loop of full refits (seconds each), never run inline with resamples.
_SLOW_BOOTSTRAP = {"kaplan", "data_constrained"}


def runs_inline(law: str, method: str, bootstrap: int, policy: FitPolicy) -> bool:
    if bootstrap == 0:
        return True
    if method == "parametric" and law in _SLOW_BOOTSTRAP:
        return False
    return bootstrap <= policy.inline_max_bootstrap


def request_fit(
    session: Session,
    experiment: Experiment,
    law: str,
    method: str,
    settings: FitSettings,
    policy: FitPolicy,
) -> Fit:
    """Fit now (small) or queue (large, or when this process already computes its limit of
    inline fits). A failed inline fit raises and stores nothing.

    An inline fit loads its runs, commits (so the request's connection goes back to the pool
    while the fit computes), then stores the result: load, release, compute, store.
    """
    now = datetime.now(UTC)
    row = {
        "law": law,
        "method": method,
        "trigger": "request",
        "settings": settings.stored(),
        "code_version": policy.code_version,
        "progress": 0.0,
        "not_before": now,
        "created_at": now,
    }
    inline = runs_inline(law, method, settings.bootstrap, policy)
    # Past the per-process limit, queue instead: inline fits share this process's CPU.
    if not (inline and policy.inline_slots.acquire(blocking=False)):
        return store.create(session, experiment, status="queued", **row)
    try:
        version, selected = _load(session, experiment.id, settings, method)
        session.commit()  # release the connection: the fit below needs none
        started = time.perf_counter()
        result = _compute(selected, law, method, settings, Deadline(policy.timeout_seconds))
    finally:
        policy.inline_slots.release()
    fit_row = store.create(session, experiment, status="running", started_at=now, **row)
    _store(session, fit_row, result, selected, version, started, policy)
    return fit_row


class Deadline:
    """A progress callback that raises `FitTimeoutError` once the fit has run past its limit
    (then calls `then`, e.g. the runner's heartbeat)."""

    def __init__(self, seconds: float, then: Progress | None = None) -> None:
        self.seconds = seconds
        self.expires = time.monotonic() + seconds
        self.then = then

    def __call__(self, fraction: float) -> None:
        if time.monotonic() > self.expires:
            raise FitTimeoutError(
                f"the fit ran longer than the limit of {self.seconds:g} s "
                "(SCALING_FIT_TIMEOUT_SECONDS) and was stopped",
                limit_seconds=self.seconds,
                progress=round(fraction, 4),
            )
        if self.then is not None:
            self.then(fraction)


def execute(
    session: Session,
    fit_row: Fit,
    progress: Progress | None = None,
    policy: FitPolicy | None = None,
) -> FitResult:
    """Fit `fit_row`'s runs and store the result on it (the caller commits)."""
    settings = FitSettings.model_validate(fit_row.settings)
    version, selected = _load(session, fit_row.experiment_id, settings, fit_row.method)
    started = time.perf_counter()
    result = _compute(selected, fit_row.law, fit_row.method, settings, progress)
    _store(session, fit_row, result, selected, version, started, policy)
    return result


def _load(
    session: Session, experiment_id: int, settings: FitSettings, method: str
) -> tuple[int | None, data.FitData]:
    # Read the version before the runs: a change in between makes this fit look stale, never
    # the reverse.
    version = session.scalar(
        sa.select(Experiment.data_version).where(Experiment.id == experiment_id)
    )
    return version, data.load(session, experiment_id, settings, method)


def _compute(
    selected: data.FitData,
    law: str,
    method: str,
    settings: FitSettings,
    progress: Progress | None,
) -> FitResult:
    result = fit(
        selected.runs,
        law=law,
        method=method,
        huber_delta=settings.huber_delta,
        bootstrap=settings.bootstrap,
        seed=settings.seed,
        budget_tol=settings.budget_tol,
        progress=progress,
    )
    notes = tuple(dropped.message for dropped in selected.dropped)
    return replace(result, warnings=notes + result.warnings) if notes else result


def _store(
    session: Session,
    fit_row: Fit,
    result: FitResult,
    selected: data.FitData,
    version: int | None,
    started: float,
    policy: FitPolicy | None,
) -> None:
    fit_row.result = _finite(
        {**result.to_json(), "dropped_runs": [d.model_dump() for d in selected.dropped]}
    )
    fit_row.run_ids = selected.run_ids
    fit_row.runs_sha256 = selected.sha256
    fit_row.n_runs = len(selected.run_ids)
    fit_row.data_version = version
    fit_row.status = "succeeded"
    fit_row.progress = 1.0
    fit_row.finished_at = datetime.now(UTC)
    fit_row.duration_s = time.perf_counter() - started
    observe_fit_duration(fit_row.law, fit_row.method, fit_row.duration_s)
    session.flush()
    # In the fit's own transaction: the event is stored exactly when the fit is.
    webhook_events.fit_succeeded(session, fit_row, result)
    if policy is not None:
        policy.notify_after_commit(session, fit_row.experiment.name)


def _finite(value: Any) -> Any:
    """Plain JSON values: numpy scalars as Python numbers, NaN and infinity as null."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value


def runs_changed(session: Session, experiment: Experiment, policy: FitPolicy) -> None:
    """Mark the experiment's fits stale and schedule one debounced refit per fit in force."""
    store.bump_data_version(session, experiment)
    store.schedule_refits(session, experiment, policy.refit_debounce, policy.code_version)
    policy.notify_after_commit(session, experiment.name)


def eta_seconds(fit_row: Fit, now: datetime) -> float | None:
    if fit_row.status != "running" or fit_row.started_at is None or fit_row.progress <= 0:
        return None
    elapsed = (now - fit_row.started_at).total_seconds()
    return max(0.0, elapsed * (1.0 - fit_row.progress) / fit_row.progress)
