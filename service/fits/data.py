"""The runs a fit uses, read from the database as the core's arrays, with their fingerprint."""

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.orm import Session

from service.scaling import RunArrays
from service.schemas.fits import FitSettings
from service.schemas.runs import RunFilter
from service.store.models import Run
from service.store.runs import clauses


@dataclass(frozen=True)
class FitData:
    """runs: one row per run (per loss-curve point for envelope fits); run_ids: the stored runs
    used, ascending; sha256: a fingerprint of their ids and values."""

    runs: RunArrays
    run_ids: list[int]
    sha256: str


def selection(settings: FitSettings) -> RunFilter:
    """The run filter a fit's settings describe (excluded runs only when asked for)."""
    return RunFilter(
        **settings.filters.model_dump(), excluded=None if settings.include_excluded else False
    )


def _curve_points(metadata: dict[str, Any]) -> list[tuple[float, float]]:
    """Intermediate (tokens, loss) points a run reports in metadata["curve"]."""
    points = []
    for point in metadata.get("curve", ()) or ():
        if isinstance(point, dict):
            point = (point.get("tokens"), point.get("loss"))
        if isinstance(point, list | tuple) and len(point) == 2:
            tokens, loss = point
            if isinstance(tokens, int | float) and isinstance(loss, int | float):
                points.append((float(tokens), float(loss)))
    return points


_COLUMNS = (Run.id, Run.params, Run.tokens, Run.flops, Run.loss, Run.unique_tokens, Run.metadata_)


def load(session: Session, experiment_id: int, settings: FitSettings, method: str) -> FitData:
    """The runs a fit with these settings uses now."""
    rows = session.execute(
        sa.select(*_COLUMNS)
        .where(Run.experiment_id == experiment_id, *clauses(selection(settings)))
        .order_by(Run.id)
    ).all()
    return _fit_data(rows, method)


def load_ids(session: Session, run_ids: list[int], method: str) -> FitData:
    """The runs a stored fit used, as it saw them (stored runs never change their values)."""
    rows = session.execute(sa.select(*_COLUMNS).where(Run.id.in_(run_ids)).order_by(Run.id)).all()
    return _fit_data(rows, method)


def _fit_data(rows: Sequence[Any], method: str) -> FitData:
    ids = [row.id for row in rows]
    digest = hashlib.sha256()
    for row in rows:
        digest.update(
            f"{row.id}:{row.params!r}:{row.tokens!r}:{row.flops!r}:{row.loss!r}:"
            f"{row.unique_tokens!r};".encode()
        )
    if method == "envelope":
        return FitData(_envelope_rows(rows), ids, digest.hexdigest())
    budgets = [row.metadata_.get("budget") for row in rows]
    has_budgets = bool(rows) and all(isinstance(b, int | float) and b > 0 for b in budgets)
    unique = [row.unique_tokens for row in rows]
    arrays = RunArrays.from_arrays(
        params=[row.params for row in rows],
        tokens=[row.tokens for row in rows],
        loss=[row.loss for row in rows],
        flops=[row.flops for row in rows],
        unique_tokens=unique if rows and all(u is not None for u in unique) else None,
        budget=budgets if has_budgets else None,
    )
    return FitData(arrays, ids, digest.hexdigest())


def _envelope_rows(rows: Sequence[Any]) -> RunArrays:
    params, tokens, loss, run_id = [], [], [], []
    for row in rows:
        for point_tokens, point_loss in [*_curve_points(row.metadata_), (row.tokens, row.loss)]:
            params.append(row.params)
            tokens.append(point_tokens)
            loss.append(point_loss)
            run_id.append(row.id)
    return RunArrays.from_arrays(params=np.asarray(params), tokens=tokens, loss=loss, run_id=run_id)
