"""Queries on runs: filtered keyset pages, lookups, stored curves and exclusion."""

import numpy as np
import sqlalchemy as sa
from numpy.typing import NDArray
from sqlalchemy.orm import Session

from service.errors import InvalidInputError, NotFoundError
from service.schemas.runs import RunFilter
from service.store.models import Run, RunCurve
from service.store.pagination import page_of


def clauses(where: RunFilter) -> list[sa.ColumnElement[bool]]:
    """The SQL conditions of a filter (ranges inclusive, None leaves that side open)."""
    clauses: list[sa.ColumnElement[bool]] = []
    for column, low, high in (
        (Run.flops, where.flops_min, where.flops_max),
        (Run.params, where.params_min, where.params_max),
        (Run.tokens, where.tokens_min, where.tokens_max),
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
    if where.excluded is not None:
        clauses.append(Run.excluded.is_(where.excluded))
    if where.source is not None:
        clauses.append(Run.source == where.source)
    if where.loss_provenance is not None:
        clauses.append(Run.loss_provenance == where.loss_provenance)
    if where.trunk_key is not None:
        clauses.append(Run.trunk_key == where.trunk_key)
    return clauses


def list_page(
    session: Session, experiment_id: int, where: RunFilter, after_id: int | None, limit: int
) -> list[Run]:
    matching = (Run.experiment_id == experiment_id, *clauses(where))
    return page_of(session, Run, matching, after_id, limit, newest_first=False)


def curve_of(session: Session, run_id: int) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """The run's stored loss curve as (tokens, loss) arrays; empty arrays when it has none."""
    row = session.get(RunCurve, run_id)
    if row is None:
        empty = np.empty(0, dtype=np.float64)
        return empty, empty
    return unpack(row.tokens), unpack(row.loss)


def curves_of(
    session: Session, run_ids: list[int]
) -> dict[int, tuple[NDArray[np.float64], NDArray[np.float64]]]:
    """The stored curves of these runs, by run id (runs without one are absent)."""
    found: dict[int, tuple[NDArray[np.float64], NDArray[np.float64]]] = {}
    for start in range(0, len(run_ids), 1000):
        rows = session.execute(
            sa.select(RunCurve.run_id, RunCurve.tokens, RunCurve.loss).where(
                RunCurve.run_id.in_(run_ids[start : start + 1000])
            )
        )
        found.update({run_id: (unpack(t), unpack(loss)) for run_id, t, loss in rows})
    return found


def pack(values: list[float]) -> bytes:
    """Floats as little-endian float64 bytes, the stored form of a curve's arrays."""
    return np.asarray(values, dtype="<f8").tobytes()


def unpack(data: bytes) -> NDArray[np.float64]:
    return np.frombuffer(data, dtype="<f8").astype(np.float64)


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
