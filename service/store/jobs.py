"""Queries on jobs: queue, claim (never twice at once), heartbeat, finish, requeue, cancel."""

from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from service.errors import ConflictError, NotFoundError
from service.store.models import Experiment, Job, Run
from service.store.pagination import page_of

ACTIVE = ("queued", "running")
FINAL = ("succeeded", "failed", "cancelled")


def get(session: Session, job_id: int) -> Job:
    job = session.get(Job, job_id)
    if job is None:
        raise NotFoundError(f"job {job_id} not found", job_id=job_id)
    return job


def queue(
    session: Session,
    experiment: Experiment,
    params: float,
    tokens: float,
    config: dict[str, Any],
    origin: str,
    max_attempts: int,
    *,
    flops: float | None = None,
) -> Job:
    """A queued job of `params` x `tokens`; `flops` is what it will train (default 6 N D; a run
    with cooldown branches trains more: its trunk plus every cooldown)."""
    job = Job(
        experiment_id=experiment.id,
        params=params,
        tokens=tokens,
        flops=6.0 * params * tokens if flops is None else flops,
        config=config,
        origin=origin,
        max_attempts=max_attempts,
    )
    session.add(job)
    session.flush()
    return job


@dataclass(frozen=True)
class JobFilter:
    experiment_id: int | None = None
    status: str | None = None
    origin: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


def list_page(session: Session, where: JobFilter, after_id: int | None, limit: int) -> list[Job]:
    clauses = []
    if where.experiment_id is not None:
        clauses.append(Job.experiment_id == where.experiment_id)
    if where.status is not None:
        clauses.append(Job.status == where.status)
    if where.origin is not None:
        clauses.append(Job.origin == where.origin)
    return page_of(session, Job, tuple(clauses), after_id, limit, newest_first=True)


def active_sizes(session: Session, experiment_id: int) -> list[tuple[float, float]]:
    """(params, tokens) of the experiment's queued and running jobs."""
    rows = session.execute(
        sa.select(Job.params, Job.tokens).where(
            Job.experiment_id == experiment_id, Job.status.in_(ACTIVE)
        )
    )
    return [(params, tokens) for params, tokens in rows]


@dataclass(frozen=True)
class Started:
    """An experiment's jobs that train or trained a run (queued, running or succeeded; failed
    and cancelled ones train nothing): how many (a run with several points is one job), and
    their 6 N D: a queued or running job's built shape and tokens (with cooldown branches: its
    trunk plus every cooldown); a finished job what it really trained: its `flops` as the
    worker recorded them for a run with several points (a trunk_key; counted once, not per
    branch), else its run as stored."""

    runs: int
    flops: float


def started(session: Session, experiment_id: int, origin: str | None = None) -> Started:
    trained = sa.case(
        (Run.trunk_key.is_(None), sa.func.coalesce(Run.flops, Job.flops)), else_=Job.flops
    )
    spent = sa.case((Job.status == "succeeded", trained), else_=Job.flops)
    query = (
        sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(spent), 0.0))
        .select_from(Job)
        .outerjoin(Run, Run.id == Job.result_run_id)  # at most one run per job
        .where(
            Job.experiment_id == experiment_id,
            Job.status.in_(("queued", "running", "succeeded")),
        )
    )
    if origin is not None:
        query = query.where(Job.origin == origin)
    runs, flops = session.execute(query).one()
    return Started(int(runs), float(flops or 0.0))


def count_by_status(session: Session) -> dict[str, int]:
    """How many jobs are in each state, every experiment together."""
    rows = session.execute(sa.select(Job.status, sa.func.count()).group_by(Job.status))
    return {status: int(count) for status, count in rows}


def claim(session: Session, owner: str, limit: int) -> list[Job]:
    """Take up to `limit` queued jobs for `owner`, oldest first.

    PostgreSQL: FOR UPDATE SKIP LOCKED, so concurrent workers pass over each other's rows.
    Elsewhere: a guarded UPDATE (status still 'queued') that only one claimant can win.
    """
    if limit <= 0:
        return []
    now = datetime.now(UTC)
    candidates = sa.select(Job.id).where(Job.status == "queued").order_by(Job.id).limit(limit)
    if session.get_bind().dialect.name == "postgresql":
        candidates = candidates.with_for_update(skip_locked=True)
    claimed = []
    for job_id in session.scalars(candidates).all():
        won = session.execute(
            sa.update(Job)
            .where(Job.id == job_id, Job.status == "queued")
            .values(
                status="running",
                lease_owner=owner,
                heartbeat_at=now,
                started_at=now,
                attempts=Job.attempts + 1,
                progress=0.0,
                error=None,
            )
        )
        assert isinstance(won, sa.CursorResult)  # an UPDATE's result counts its rows
        if won.rowcount == 1:
            claimed.append(job_id)
    session.flush()
    return [get(session, job_id) for job_id in claimed]


def heartbeat(session: Session, owner: str, job_ids: list[int]) -> None:
    if job_ids:
        session.execute(
            sa.update(Job)
            .where(Job.id.in_(job_ids), Job.lease_owner == owner, Job.status == "running")
            .values(heartbeat_at=datetime.now(UTC))
        )


def requeue_expired(session: Session, lease: timedelta) -> list[int]:
    """Jobs whose worker went silent: back to the queue, or failed after max_attempts."""
    cutoff = datetime.now(UTC) - lease
    expired = session.scalars(
        sa.select(Job).where(Job.status == "running", Job.heartbeat_at < cutoff).with_for_update()
    ).all()
    for job in expired:
        owner = job.lease_owner
        job.lease_owner = None
        job.handle = None
        if job.cancel_requested:
            job.status, job.finished_at = "cancelled", datetime.now(UTC)
        elif job.attempts >= job.max_attempts:
            job.status, job.finished_at = "failed", datetime.now(UTC)
            job.error = f"worker {owner} stopped answering; gave up after {job.attempts} attempts"
        else:
            job.status = "queued"
            job.error = f"worker {owner} stopped answering during attempt {job.attempts}"
    return [job.id for job in expired]


def release(session: Session, owner: str, job_id: int) -> None:
    """Give a running job back to the queue without counting the attempt (graceful stop)."""
    session.execute(
        sa.update(Job)
        .where(Job.id == job_id, Job.lease_owner == owner, Job.status == "running")
        .values(
            status="queued",
            lease_owner=None,
            handle=None,
            attempts=sa.func.max(Job.attempts - 1, 0)
            if session.get_bind().dialect.name == "sqlite"
            else sa.func.greatest(Job.attempts - 1, 0),
        )
    )


def request_cancel(session: Session, job: Job) -> Job:
    if job.status in FINAL:
        raise ConflictError(f"job {job.id} is already {job.status}", job_id=job.id)
    if job.status == "queued":
        job.status, job.finished_at = "cancelled", datetime.now(UTC)
    else:
        job.cancel_requested = True  # the worker that runs it kills it on its next tick
    return job
