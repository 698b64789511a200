"""The worker: a loop over the jobs table. Claim jobs, hand them to an executor, reconcile what
the executor says into the job rows, store results as runs, and give jobs back on shutdown."""

import os
import socket
import threading
import uuid
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
import structlog
from pydantic import ValidationError
from sqlalchemy.orm import Session, sessionmaker

from service.db import session_scope
from service.errors import ServiceError
from service.fits.cache import FitCache
from service.fits.runner import FitRunner
from service.fits.service import FitPolicy
from service.ingest.batch import ingest_runs
from service.jobs import autofill
from service.metrics import set_job_states, set_queue_depth, worker_heartbeat
from service.schemas.runs import RunIn
from service.settings import Settings
from service.sources import export as exports
from service.sources import sync as sources
from service.store import jobs as store
from service.store.models import Experiment, Job
from service.webhooks import events as webhook_events
from service.webhooks.delivery import Deliverer
from service.worker.executors.base import Executor, JobSpec, Outcome, UnknownHandleError

log = structlog.get_logger(__name__)


class Worker:
    def __init__(
        self,
        session_factory: sessionmaker[Session],
        executor: Executor,
        policy: FitPolicy,
        lease: timedelta = timedelta(seconds=60),
        poll_seconds: float = 1.0,
        worker_id: str | None = None,
        autopilot: bool = True,
        run_fits: bool = True,
        settings: Settings | None = None,
    ) -> None:
        self.sessions = session_factory
        # With settings, scheduled sources (MLflow) are synced when due.
        self.settings = settings
        # With settings, a thread sends the webhook outbox while the loop runs.
        self.deliverer = Deliverer(session_factory, settings) if settings is not None else None
        self.executor = executor
        self.policy = policy
        self.autopilot = autopilot
        self.fit_cache = FitCache()
        # The worker also runs queued fits and refits, so a deployment without an API-side
        # fit runner still refits (claims are guarded: each fit runs once).
        self.fit_runner = FitRunner(session_factory, policy) if run_fits else None
        self.lease = lease
        self.poll_seconds = poll_seconds
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.handles: dict[int, str] = {}

    def run(self, stop: threading.Event) -> None:
        """Tick until `stop` is set, then give running jobs back to the queue."""
        log.info("worker_started", worker=self.worker_id, executor=self.executor.name)
        if self.deliverer is not None:
            self.deliverer.start()
        try:
            while not stop.is_set():
                try:
                    self.tick()
                except sa.exc.OperationalError:
                    log.warning("worker_database_unavailable", worker=self.worker_id)
                stop.wait(self.poll_seconds)
        finally:
            if self.deliverer is not None:
                self.deliverer.stop()
            self.shutdown()

    def tick(self) -> None:
        self.reconcile()
        with session_scope(self.sessions) as session:
            requeued = store.requeue_expired(session, self.lease)
            for job_id in requeued:  # those given up or cancelled have finished
                job = store.get(session, job_id)
                if job.status in store.FINAL:
                    webhook_events.job_finished(session, job)
        if requeued:
            log.info("jobs_requeued", jobs=requeued)
        if self.fit_runner is not None:
            for _ in range(3):
                if not self.fit_runner.run_once():
                    break
        if self.autopilot:
            self.autopilot_tick()
        if self.settings is not None:
            self.sources_tick()
            self.exports_tick()
        self.claim()
        worker_heartbeat(self.worker_id)
        self._publish_metrics()

    def autopilot_tick(self) -> None:
        with session_scope(self.sessions) as session:
            experiments = session.scalars(
                sa.select(Experiment).where(Experiment.autofill.is_not(None))
            ).all()
            for experiment in experiments:
                message = autofill.tick(session, experiment, self.policy, self.fit_cache)
                log.debug("autopilot", experiment=experiment.name, message=message)
                autofill.notify_state(session, experiment, self.fit_cache)

    def sources_tick(self) -> None:
        """Sync the scheduled sources that are due, each in its own transaction; a failure is
        recorded on its source (and retried a period later), never raised."""
        settings = self.settings
        if settings is None:
            return
        with session_scope(self.sessions) as session:
            due = sources.due(session, datetime.now(UTC))
        for source_id in due:
            try:
                with session_scope(self.sessions) as session:
                    result = sources.sync(session, source_id, settings, self.policy)
            except Exception as exc:  # one bad source must not stop the worker
                message = exc.message if isinstance(exc, ServiceError) else type(exc).__name__
                with session_scope(self.sessions) as session:
                    sources.record_failure(session, source_id, message)
                log.warning("source_sync_failed", source=source_id, error=message)
                continue
            log.info(
                "source_synced",
                source=source_id,
                created=result.created,
                unmapped=len(result.unmapped),
            )

    def exports_tick(self) -> None:
        """Log the succeeded fits not yet logged of the sources with log_results to MLflow, one
        fit per transaction (a few per source and tick); a failure is recorded on its source and
        retried after exports.RETRY_AFTER, never raised."""
        settings = self.settings
        if settings is None:
            return
        with session_scope(self.sessions) as session:
            due = exports.due(session, datetime.now(UTC))
            pending = {source_id: exports.pending_fits(session, source_id) for source_id in due}
        for source_id, fit_ids in pending.items():
            for fit_id in fit_ids:
                try:
                    with session_scope(self.sessions) as session:
                        export = exports.export_fit(
                            session, source_id, fit_id, settings, self.fit_cache
                        )
                        run_id = export.mlflow_run_id
                except Exception as exc:  # one bad source must not stop the worker
                    message = exc.message if isinstance(exc, ServiceError) else type(exc).__name__
                    with session_scope(self.sessions) as session:
                        exports.record_failure(session, source_id, f"fit {fit_id}: {message}")
                    log.warning(
                        "fit_export_failed",
                        source=source_id,
                        fit=fit_id,
                        error=message,
                        exc_info=not isinstance(exc, ServiceError),
                    )
                    break
                log.info("fit_exported", source=source_id, fit=fit_id, mlflow_run=run_id)

    def claim(self) -> None:
        free = self.executor.slots - len(self.handles)
        if free <= 0:
            return
        with session_scope(self.sessions) as session:
            specs = [
                JobSpec(
                    job.id,
                    job.experiment.name,
                    job.params,
                    job.tokens,
                    {**job.config, "attempt": job.attempts},
                )
                for job in store.claim(session, self.worker_id, free)
            ]
        for spec in specs:
            try:
                handle = self.executor.submit(spec)
            except Exception as exc:  # an executor that cannot start the job fails it
                log.exception("job_submit_failed", job_id=spec.job_id)
                self._finish(spec.job_id, Outcome("failed", error=f"submit failed: {exc}"))
                continue
            self.handles[spec.job_id] = handle
            with session_scope(self.sessions) as session:
                session.execute(
                    sa.update(Job)
                    .where(Job.id == spec.job_id, Job.lease_owner == self.worker_id)
                    .values(handle=handle, executor=self.executor.name)
                )
            log.info("job_started", job_id=spec.job_id, handle=handle)

    def reconcile(self) -> None:
        if not self.handles:
            return
        with session_scope(self.sessions) as session:
            store.heartbeat(session, self.worker_id, list(self.handles))
            cancelling = set(
                session.scalars(
                    sa.select(Job.id).where(
                        Job.id.in_(list(self.handles)), Job.cancel_requested.is_(True)
                    )
                )
            )
        for job_id, handle in list(self.handles.items()):
            try:
                if job_id in cancelling:
                    self.executor.cancel(handle)
                outcome = self.executor.poll(handle)
            except UnknownHandleError:
                outcome = Outcome("failed", error="the executor lost track of the job")
            if outcome.state == "running":
                self._progress(job_id, outcome)
            else:
                del self.handles[job_id]
                self._finish(job_id, outcome)

    def _progress(self, job_id: int, outcome: Outcome) -> None:
        with session_scope(self.sessions) as session:
            session.execute(
                sa.update(Job)
                .where(Job.id == job_id, Job.lease_owner == self.worker_id)
                .values(progress=outcome.progress, log_tail=outcome.log_tail[-4000:])
            )

    def _finish(self, job_id: int, outcome: Outcome) -> None:
        """Record the outcome; its runs (one per point: a WSD job has one per branch) are stored
        in the same transaction, all or none, exactly once. The job keeps its own run (the
        longest point) as `result_run_id` and the FLOPs it really trained as `flops`."""
        now = datetime.now(UTC)
        with session_scope(self.sessions) as session:
            job = session.get(Job, job_id)
            if job is None or job.lease_owner != self.worker_id or job.status != "running":
                log.warning("job_lost_lease", job_id=job_id)  # requeued elsewhere meanwhile
                return
            job.log_tail = outcome.log_tail[-4000:]
            job.finished_at = now
            job.lease_owner = None
            if outcome.state == "succeeded" and outcome.runs:
                try:
                    runs = [RunIn.model_validate(run) for run in outcome.runs]
                    with session.begin_nested():
                        result = ingest_runs(session, job.experiment, runs, self.policy)
                except (ValidationError, ServiceError) as exc:
                    job.status, job.error = "failed", f"result not stored: {exc}"
                else:
                    job.status, job.progress = "succeeded", 1.0
                    own = f"job-{job.id}"
                    stored = [
                        (run.run_key, status.id)
                        for run, status in zip(runs, result.runs, strict=True)
                    ]
                    job.result_run_id = next((i for k, i in stored if k == own), stored[0][1])
                    if outcome.trained_flops is not None:
                        job.flops = outcome.trained_flops
            elif outcome.state == "cancelled":
                job.status = "cancelled"
            elif outcome.state == "succeeded":
                job.status, job.error = "failed", "the executor reported no run"
            else:
                job.status, job.error = "failed", outcome.error or "failed"
            webhook_events.job_finished(session, job)
            log.info("job_finished", job_id=job_id, status=job.status, error=job.error)

    def shutdown(self) -> None:
        """Stop the executor's jobs and give them back to the queue (the attempt does not count)."""
        self.executor.close()
        with session_scope(self.sessions) as session:
            for job_id in self.handles:
                store.release(session, self.worker_id, job_id)
        log.info("worker_stopped", worker=self.worker_id, released=list(self.handles))
        self.handles.clear()

    def _publish_metrics(self) -> None:
        with session_scope(self.sessions) as session:
            counts = store.count_by_status(session)
        set_job_states(counts)
        set_queue_depth(counts.get("queued", 0))
