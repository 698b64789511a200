"""Queries on fits: create, schedule refits (debounced), claim, progress, finish, current."""

from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from service.db import Reader
from service.errors import NotFoundError
from service.schemas.fits import FitStatus
from service.store.facts import EXPERIMENT_COLUMNS, FIT_COLUMNS, ExperimentFacts, FitFacts
from service.store.models import Experiment, Fit
from service.store.pagination import page_of

FITS = Fit.metadata.tables[Fit.__tablename__]
_QUEUED_REFIT = sa.text("status = 'queued' AND trigger = 'refit'")


def status_is(*statuses: FitStatus) -> sa.ColumnElement[bool]:
    """`fits.status` is one of `statuses`, written into the SQL as constants, not bound.

    SQLite prepares a statement again at every execution when a bound value meets a column in a
    partial index's WHERE (`status`, in uq_fits_queued_refit's): with the status bound, the
    uncached answer's read took 219-261 us against 120-143 (bench/answer.py --sqlite-only).
    PostgreSQL's generic plans of prepared statements can use that index only with a constant.
    """
    constants = [sa.literal_column(f"'{status}'", sa.String) for status in statuses]
    return Fit.status == constants[0] if len(constants) == 1 else Fit.status.in_(constants)


def get(session: Session, fit_id: int) -> Fit:
    fit = session.get(Fit, fit_id)
    if fit is None:
        raise NotFoundError(f"fit {fit_id} not found", fit_id=fit_id)
    return fit


def create(session: Session, experiment: Experiment, **fields: Any) -> Fit:
    fit = Fit(experiment_id=experiment.id, **fields)
    session.add(fit)
    session.flush()
    return fit


# The fit of an experiment's law and method; in force when it succeeded (the latest such).
_SAME_LAW = (Fit.law == sa.bindparam("law"), Fit.method == sa.bindparam("method"))
_SUCCEEDED = status_is("succeeded")


def _latest_of(status: sa.ColumnElement[bool]) -> sa.Select[Fit]:
    return (
        sa.select(Fit)
        .where(Fit.experiment_id == sa.bindparam("experiment_id"), *_SAME_LAW, status)
        .order_by(Fit.id.desc())
        .limit(1)
    )


# Built once: `current` runs on every uncached recommendation, and building the statement cost
# more than running it (SQLAlchemy caches the compiled SQL, not the statement objects).
_CURRENT = _latest_of(_SUCCEEDED)
_LATEST_FINISHED = _latest_of(status_is("succeeded", "failed"))


def _latest(
    session: Session, statement: sa.Select[Fit], experiment_id: int, law: str, method: str
) -> Fit | None:
    return session.scalar(statement, {"experiment_id": experiment_id, "law": law, "method": method})


# An experiment by name and its fit in force, in one statement: the read behind every uncached
# answer, as plain rows (store.facts).
_EXPERIMENT_AND_CURRENT = (
    sa.select(*EXPERIMENT_COLUMNS, *FIT_COLUMNS)
    .outerjoin(Fit, sa.and_(Fit.experiment_id == Experiment.id, *_SAME_LAW, _SUCCEEDED))
    .where(Experiment.name == sa.bindparam("name"))
    .order_by(Fit.id.desc())
    .limit(1)
)
_RESULT = sa.select(Fit.result).where(Fit.id == sa.bindparam("fit_id"))


def experiment_and_current(
    reader: Reader, name: str, law: str, method: str
) -> tuple[ExperimentFacts, FitFacts | None] | None:
    """The experiment called `name` and its fit in force (None without one); None when there
    is no such experiment."""
    parameters = {"name": name, "law": law, "method": method}
    row = reader.execute(_EXPERIMENT_AND_CURRENT, parameters).first()
    if row is None:
        return None
    split = len(EXPERIMENT_COLUMNS)
    fit = None if row[split] is None else FitFacts(*row[split:])
    return ExperimentFacts(*row[:split]), fit


def result_of(reader: Reader, fit_id: int) -> dict[str, Any] | None:
    """A fit's stored result (FitResult.to_json), read alone: it is the large column."""
    stored: dict[str, Any] | None = reader.execute(_RESULT, {"fit_id": fit_id}).scalar_one()
    return stored


def current(session: Session, experiment_id: int, law: str, method: str) -> Fit | None:
    """The fit in force: the latest that succeeded for this law and method."""
    return _latest(session, _CURRENT, experiment_id, law, method)


def latest_finished(session: Session, experiment_id: int, law: str, method: str) -> Fit | None:
    """The last fit of this law and method that ended, succeeded or failed."""
    return _latest(session, _LATEST_FINISHED, experiment_id, law, method)


def _by_experiment(
    session: Session, experiment_ids: list[int], *where: sa.ColumnElement[bool]
) -> dict[int, Fit]:
    """Per experiment, its fit of largest id matching ``where``: one query for all of them."""
    if not experiment_ids:
        return {}
    newest = (
        sa.select(sa.func.max(Fit.id))
        .where(Fit.experiment_id.in_(experiment_ids), *where)
        .group_by(Fit.experiment_id)
    )
    return {
        fit.experiment_id: fit for fit in session.scalars(sa.select(Fit).where(Fit.id.in_(newest)))
    }


def current_by_experiment(
    session: Session, experiment_ids: list[int], law: str, method: str
) -> dict[int, Fit]:
    """``current`` for many experiments at once; experiments without one are left out."""
    return _by_experiment(session, experiment_ids, Fit.law == law, Fit.method == method, _SUCCEEDED)


def latest_by_experiment(session: Session, experiment_ids: list[int]) -> dict[int, Fit]:
    """Each experiment's newest fit of any law, method and status."""
    return _by_experiment(session, experiment_ids)


def pending(session: Session, experiment_id: int, law: str, method: str) -> bool:
    """Whether a fit of this law and method is queued or running."""
    return (
        session.scalar(
            sa.select(Fit.id)
            .where(
                Fit.experiment_id == experiment_id,
                Fit.law == law,
                Fit.method == method,
                status_is("queued", "running"),
            )
            .limit(1)
        )
        is not None
    )


def list_page(session: Session, experiment_id: int, after_id: int | None, limit: int) -> list[Fit]:
    where = (Fit.experiment_id == experiment_id,)
    return page_of(session, Fit, where, after_id, limit, newest_first=True)


def bump_data_version(session: Session, experiment: Experiment) -> None:
    session.execute(
        sa.update(Experiment)
        .where(Experiment.id == experiment.id)
        .values(data_version=Experiment.data_version + 1)
    )
    session.expire(experiment, ["data_version"])


def schedule_refits(
    session: Session, experiment: Experiment, debounce: timedelta, code_version: str
) -> int:
    """Queue a refit for each law and method that has a fit in force; returns how many.

    A refit already waiting is pushed back by `debounce` instead of duplicated: the partial
    unique index makes concurrent schedulers agree on one row.
    """
    in_force = session.execute(
        sa.select(Fit.law, Fit.method, sa.func.max(Fit.id))
        .where(Fit.experiment_id == experiment.id, _SUCCEEDED)
        .group_by(Fit.law, Fit.method)
    ).all()
    if not in_force:
        return 0
    settings_of: dict[int, dict[str, Any]] = dict(
        session.execute(
            sa.select(Fit.id, Fit.settings).where(Fit.id.in_([row[2] for row in in_force]))
        ).all()
    )
    now = datetime.now(UTC)
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    for law, method, fit_id in in_force:
        statement = insert(FITS).values(
            experiment_id=experiment.id,
            law=law,
            method=method,
            trigger="refit",
            status="queued",
            settings=settings_of[fit_id],
            code_version=code_version,
            progress=0.0,
            not_before=now + debounce,
            created_at=now,
        )
        session.execute(
            statement.on_conflict_do_update(
                index_elements=["experiment_id", "law", "method"],
                index_where=_QUEUED_REFIT,
                set_={"not_before": statement.excluded.not_before},
            )
        )
    return len(in_force)


def claim_next(session: Session, owner: str, lease: timedelta) -> Fit | None:
    """Take one due fit (queued, or running with an expired lease) for `owner`, or None.

    The guarded UPDATE succeeds for one claimant only, on every backend.
    """
    now = datetime.now(UTC)
    candidates = session.scalars(
        sa.select(Fit.id)
        .where(
            sa.or_(
                sa.and_(status_is("queued"), Fit.not_before <= now),
                sa.and_(status_is("running"), Fit.heartbeat_at < now - lease),
            )
        )
        .order_by(Fit.not_before, Fit.id)
        .limit(5)
    ).all()
    for fit_id in candidates:
        claimed = session.execute(
            sa.update(Fit)
            .where(
                Fit.id == fit_id,
                sa.or_(
                    status_is("queued"),
                    sa.and_(status_is("running"), Fit.heartbeat_at < now - lease),
                ),
            )
            .values(
                status="running", lease_owner=owner, heartbeat_at=now, started_at=now, progress=0.0
            )
        )
        assert isinstance(claimed, sa.CursorResult)  # an UPDATE's result counts its rows
        if claimed.rowcount == 1:
            return session.get(Fit, fit_id)
    return None


def heartbeat(session: Session, fit_id: int, owner: str, progress: float) -> None:
    session.execute(
        sa.update(Fit)
        .where(Fit.id == fit_id, Fit.lease_owner == owner)
        .values(progress=progress, heartbeat_at=datetime.now(UTC))
    )
