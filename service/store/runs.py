"""Queries on runs: filtered keyset pages, lookups and exclusion."""

from dataclasses import asdict, dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from service.errors import InvalidInputError, NotFoundError
from service.schemas.common import SafeText
from service.store.models import Run


@dataclass(frozen=True)
class RunFilter:
    """Ranges are inclusive; None leaves that side open."""

    flops_min: float | None = None
    flops_max: float | None = None
    params_min: float | None = None
    params_max: float | None = None
    tokens_min: float | None = None
    tokens_max: float | None = None
    excluded: bool | None = None
    source: SafeText | None = None

    def as_dict(self) -> dict[str, object]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    def clauses(self) -> list[sa.ColumnElement[bool]]:
        clauses: list[sa.ColumnElement[bool]] = []
        for column, low, high in (
            (Run.flops, self.flops_min, self.flops_max),
            (Run.params, self.params_min, self.params_max),
            (Run.tokens, self.tokens_min, self.tokens_max),
        ):
            if low is not None and high is not None and low > high:
                raise InvalidInputError(
                    f"{column.key}_min is larger than {column.key}_max",
                    field=f"{column.key}_min",
                )
            if low is not None:
                clauses.append(column >= low)
            if high is not None:
                clauses.append(column <= high)
        if self.excluded is not None:
            clauses.append(Run.excluded.is_(self.excluded))
        if self.source is not None:
            clauses.append(Run.source == self.source)
        return clauses


def list_page(
    session: Session, experiment_id: int, where: RunFilter, after_id: int | None, limit: int
) -> list[Run]:
    query = (
        sa.select(Run)
        .where(Run.experiment_id == experiment_id, *where.clauses())
        .order_by(Run.id)
        .limit(limit)
    )
    if after_id is not None:
        query = query.where(Run.id > after_id)
    return list(session.scalars(query))


def get(session: Session, run_id: int) -> Run:
    run = session.get(Run, run_id)
    if run is None:
        raise NotFoundError(f"run {run_id} not found", run_id=run_id)
    return run


def set_excluded(session: Session, run: Run, excluded: bool, reason: str | None) -> bool:
    """Exclude (with a reason) or include a run; True when that changed it."""
    if excluded and not reason:
        raise InvalidInputError("a reason is required to exclude a run", field="reason")
    changed = run.excluded != excluded
    run.excluded = excluded
    run.excluded_reason = reason if excluded else None
    return changed
