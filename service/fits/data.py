"""The runs a fit uses, read from the database as the core's arrays, with their fingerprint.

Only valid points are fit by default: losses at the end of a schedule planned to end there
(end_of_schedule) or after a cooldown (after_cooldown). A loss read mid-schedule from a longer
run is biased upward (the learning rate has not decayed yet), which is how Kaplan et al.'s
points misled them (Hoffmann et al. 2022); such runs are left out and counted in ``dropped``
unless the fit's settings say ``include_mid_schedule``. Runs sharing a ``trunk_key`` are one
resampling group for the bootstrap.
"""

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.orm import Session

from service.scaling import RunArrays
from service.schemas.fits import DroppedRuns, FitSettings
from service.schemas.runs import VALID_PROVENANCES, RunFilter
from service.store.models import Run
from service.store.runs import clauses, curves_of

# Run ids named in a fit's `dropped_runs` entry (the count is always complete).
DROPPED_IDS_SHOWN = 100


@dataclass(frozen=True)
class FitData:
    """runs: one row per run (envelope fits that include mid-schedule points: per loss-curve
    point); run_ids: the stored runs used, ascending; sha256: a fingerprint of their ids and
    values; dropped: runs the filters selected but the fit left out, by reason."""

    runs: RunArrays
    run_ids: list[int]
    sha256: str
    dropped: tuple[DroppedRuns, ...] = field(default=())


def selection(settings: FitSettings) -> RunFilter:
    """The run filter a fit's settings describe (excluded runs only when asked for)."""
    return RunFilter(
        **settings.filters.model_dump(), excluded=None if settings.include_excluded else False
    )


def _metadata_curve(metadata: dict[str, Any]) -> list[tuple[float, float]]:
    """(tokens, loss) points a run reports in metadata["curve"], as curves were sent before
    they were stored on their own."""
    points = []
    for point in metadata.get("curve", ()) or ():
        if isinstance(point, dict):
            point = (point.get("tokens"), point.get("loss"))
        if isinstance(point, list | tuple) and len(point) == 2:
            tokens, loss = point
            if isinstance(tokens, int | float) and isinstance(loss, int | float):
                points.append((float(tokens), float(loss)))
    return points


_COLUMNS = (
    Run.id,
    Run.params,
    Run.tokens,
    Run.flops,
    Run.loss,
    Run.unique_tokens,
    Run.metadata_,
    Run.loss_provenance,
    Run.trunk_key,
    Run.curve_points,
)


def load(session: Session, experiment_id: int, settings: FitSettings, method: str) -> FitData:
    """The runs a fit with these settings uses now."""
    rows = session.execute(
        sa.select(*_COLUMNS)
        .where(Run.experiment_id == experiment_id, *clauses(selection(settings)))
        .order_by(Run.id)
    ).all()
    used, dropped = _split_by_provenance(rows, settings.include_mid_schedule)
    return _fit_data(session, used, method, settings.include_mid_schedule, dropped)


def load_ids(session: Session, run_ids: list[int], method: str, settings: FitSettings) -> FitData:
    """The runs a stored fit used, as it saw them (stored runs never change their values)."""
    rows = session.execute(sa.select(*_COLUMNS).where(Run.id.in_(run_ids)).order_by(Run.id)).all()
    return _fit_data(session, rows, method, settings.include_mid_schedule, ())


def _split_by_provenance(
    rows: Sequence[Any], include_mid_schedule: bool
) -> tuple[list[Any], tuple[DroppedRuns, ...]]:
    if include_mid_schedule:
        return list(rows), ()
    used = [row for row in rows if row.loss_provenance in VALID_PROVENANCES]
    mid = [row.id for row in rows if row.loss_provenance not in VALID_PROVENANCES]
    if not mid:
        return used, ()
    dropped = DroppedRuns(
        reason="mid_schedule",
        count=len(mid),
        message=f"{len(mid)} run(s) left out: their loss was read mid-schedule from a longer run "
        "(loss_provenance mid_schedule), which overstates the loss a schedule ending there "
        "reaches; include_mid_schedule=true fits them anyway",
        run_ids=mid[:DROPPED_IDS_SHOWN],
    )
    return used, (dropped,)


def _group_labels(rows: Sequence[Any]) -> list[int] | None:
    """One label per trunk (runs without a trunk_key: one each); None when no run has a trunk,
    so independent runs keep the plain bootstrap."""
    if all(row.trunk_key is None for row in rows):
        return None
    labels: dict[tuple[str, Any], int] = {}
    out = []
    for row in rows:
        key = ("trunk", row.trunk_key) if row.trunk_key is not None else ("run", row.id)
        out.append(labels.setdefault(key, len(labels)))
    return out


def _fit_data(
    session: Session,
    rows: Sequence[Any],
    method: str,
    include_mid_schedule: bool,
    dropped: tuple[DroppedRuns, ...],
) -> FitData:
    ids = [row.id for row in rows]
    digest = hashlib.sha256()
    for row in rows:
        digest.update(
            f"{row.id}:{row.params!r}:{row.tokens!r}:{row.flops!r}:{row.loss!r}:"
            f"{row.unique_tokens!r};".encode()
        )
        if row.trunk_key is not None:  # grouping changes the bootstrap
            digest.update(f"trunk={row.trunk_key!r};".encode())
    groups = _group_labels(rows)
    if method == "envelope":
        runs = _envelope_rows(session, rows, groups, include_mid_schedule)
        return FitData(runs, ids, digest.hexdigest(), dropped)
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
        groups=groups,
    )
    return FitData(arrays, ids, digest.hexdigest(), dropped)


def _envelope_rows(
    session: Session, rows: Sequence[Any], groups: list[int] | None, include_curves: bool
) -> RunArrays:
    """Each run's own point; with ``include_curves`` also the points of its loss curve before
    its end (mid-schedule checkpoints: the envelope of whole curves, as Hoffmann et al. drew
    it). A curve's points belong to their run's group."""
    curves = (
        curves_of(session, [row.id for row in rows if row.curve_points]) if include_curves else {}
    )
    params, tokens, loss, run_id, group = [], [], [], [], []
    for index, row in enumerate(rows):
        points = [(row.tokens, row.loss)]
        if include_curves:
            stored = curves.get(row.id)
            earlier = (
                list(zip(stored[0].tolist(), stored[1].tolist(), strict=True))
                if stored is not None
                else _metadata_curve(row.metadata_)
            )
            points = [point for point in earlier if point[0] < row.tokens] + points
        for point_tokens, point_loss in points:
            params.append(row.params)
            tokens.append(point_tokens)
            loss.append(point_loss)
            run_id.append(row.id)
            group.append(index if groups is None else groups[index])
    return RunArrays.from_arrays(
        params=np.asarray(params), tokens=tokens, loss=loss, run_id=run_id, groups=group
    )
