"""A thread that runs queued fits and refits: claim, fit with heartbeats, store or fail."""

import os
import socket
import threading
import time
import uuid
from datetime import UTC, datetime

import sqlalchemy as sa
import structlog
from sqlalchemy.orm import Session, sessionmaker

from service.db import session_scope
from service.envelope import body_of, error_body, error_json
from service.errors import FitTimeoutError
from service.fits.service import Deadline, FitPolicy, execute
from service.scaling import ScalingError
from service.schemas.common import ErrorBody
from service.store import fits as store
from service.store.models import Experiment, Fit
from service.webhooks import events as webhook_events

log = structlog.get_logger(__name__)
HEARTBEAT_SECONDS = 0.5
# While the database is away, polls back off up to this many seconds.
MAX_BACKOFF_SECONDS = 10.0


class FitRunner:
    """Every API process may run one; the guarded claim gives each fit to exactly one."""

    def __init__(
        self, session_factory: sessionmaker[Session], policy: FitPolicy, poll_seconds: float = 0.25
    ) -> None:
        self.session_factory = session_factory
        self.policy = policy
        self.poll_seconds = poll_seconds
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="fit-runner", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _loop(self) -> None:
        failing = 0  # consecutive failed polls: logged once, then backed off
        while not self._stop.is_set():
            try:
                worked = self.run_once()
            except Exception as exc:  # a database outage must not kill the thread
                if failing == 0:
                    log.warning("fit_runner_unavailable", error=f"{type(exc).__name__}: {exc}")
                failing += 1
                self._stop.wait(min(self.poll_seconds * 2.0**failing, MAX_BACKOFF_SECONDS))
                continue
            if failing:
                log.info("fit_runner_recovered", failed_polls=failing)
                failing = 0
            if not worked:
                self._stop.wait(self.poll_seconds)

    def run_once(self) -> bool:
        """Claim and run one due fit; False when none was due."""
        with session_scope(self.session_factory) as session:
            claimed = store.claim_next(session, self.owner, self.policy.lease)
            fit_id = claimed.id if claimed is not None else None
        if fit_id is None:
            return False
        self._run(fit_id)
        return True

    def _progress(self, fit_id: int) -> "ProgressReporter":
        return ProgressReporter(self.session_factory, fit_id, self.owner)

    def _run(self, fit_id: int) -> None:
        with session_scope(self.session_factory) as session:
            fit_row = session.get(Fit, fit_id)
            assert fit_row is not None
            # A failed fit records the data it failed on, so that nobody retries it unchanged.
            version = session.scalar(
                sa.select(Experiment.data_version).where(Experiment.id == fit_row.experiment_id)
            )
            try:
                progress = Deadline(self.policy.timeout_seconds, self._progress(fit_id))
                execute(session, fit_row, progress, self.policy)
                log.info("fit_succeeded", fit_id=fit_id, duration_s=fit_row.duration_s)
            except FitTimeoutError as exc:
                session.rollback()
                _fail(session, fit_id, body_of(exc), version)
                log.warning(
                    "fit_timed_out", fit_id=fit_id, limit_seconds=exc.details["limit_seconds"]
                )
            except ScalingError as exc:
                session.rollback()
                _fail(session, fit_id, body_of(exc), version)
                log.warning("fit_failed", fit_id=fit_id, code=exc.code, message=exc.message)
            except Exception as exc:
                session.rollback()
                _fail(session, fit_id, error_body("internal_error", str(exc)), version)
                log.exception("fit_crashed", fit_id=fit_id)


def _fail(session: Session, fit_id: int, error: ErrorBody, data_version: int | None) -> None:
    fit_row = session.get(Fit, fit_id)
    assert fit_row is not None
    fit_row.data_version = data_version
    fit_row.status = "failed"
    fit_row.error = error_json(error)
    fit_row.finished_at = datetime.now(UTC)
    webhook_events.fit_failed(session, fit_row)


class ProgressReporter:
    """The core's progress callback: writes progress and a heartbeat at most twice a second."""

    def __init__(self, session_factory: sessionmaker[Session], fit_id: int, owner: str) -> None:
        self.session_factory = session_factory
        self.fit_id = fit_id
        self.owner = owner
        self._last = 0.0

    def __call__(self, fraction: float) -> None:
        now = time.monotonic()
        if now - self._last < HEARTBEAT_SECONDS and fraction < 1.0:
            return
        self._last = now
        with session_scope(self.session_factory) as session:
            store.heartbeat(session, self.fit_id, self.owner, min(max(fraction, 0.0), 1.0))
