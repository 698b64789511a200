"""Queries on experiments."""

import difflib
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from service.errors import ConflictError, ExperimentNotEmptyError, NotFoundError
from service.store.models import Experiment, Run
from service.store.pagination import page_of

# Built once (every request naming an experiment runs it): see store/fits.py's _CURRENT.
_BY_NAME = sa.select(Experiment).where(Experiment.name == sa.bindparam("name"))
_BY_NAME_FOR_UPDATE = _BY_NAME.with_for_update()


def get_by_name(session: Session, name: str, *, for_update: bool = False) -> Experiment:
    query = _BY_NAME_FOR_UPDATE if for_update else _BY_NAME
    experiment = session.scalar(query, {"name": name})
    if experiment is None:
        raise NotFoundError(
            f"experiment {name!r} not found{_did_you_mean(session, name)}", experiment=name
        )
    return experiment


def _did_you_mean(session: Session, name: str) -> str:
    """A hint naming the closest existing experiment, for a misspelt name."""
    names = session.scalars(sa.select(Experiment.name).limit(10_000)).all()
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.75)
    return f"; did you mean {close[0]!r}?" if close else ""


def create(session: Session, **fields: Any) -> Experiment:
    experiment = Experiment(**fields)
    session.add(experiment)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as exc:
        raise ConflictError(
            f"experiment {fields['name']!r} already exists", experiment=fields["name"]
        ) from exc
    return experiment


def run_counts(session: Session, experiment_ids: list[int]) -> dict[int, int]:
    if not experiment_ids:
        return {}
    rows = session.execute(
        sa.select(Run.experiment_id, sa.func.count())
        .where(Run.experiment_id.in_(experiment_ids))
        .group_by(Run.experiment_id)
    )
    return {experiment_id: count for experiment_id, count in rows}


def list_page(session: Session, after_id: int | None, limit: int) -> list[Experiment]:
    return page_of(session, Experiment, (), after_id, limit, newest_first=False)


def delete(session: Session, experiment: Experiment, *, force: bool) -> None:
    count = run_counts(session, [experiment.id]).get(experiment.id, 0)
    if count and not force:
        raise ExperimentNotEmptyError(
            f"experiment {experiment.name!r} has {count} runs; pass force=true to delete them too",
            runs=count,
        )
    session.execute(sa.delete(Run).where(Run.experiment_id == experiment.id))
    session.delete(experiment)
