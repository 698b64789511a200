"""Store a batch of runs (and their loss curves): all or nothing, idempotent by run_key, safe
under concurrent posts."""

import hashlib
import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.orm import Session

from service.errors import InvalidInputError, ProvenanceMismatchError, RunKeyConflictError
from service.fits.service import FitPolicy, runs_changed
from service.schemas.common import Warning
from service.schemas.runs import RunBatchResult, RunIn
from service.store.bulk import RUNS, insert_curves, insert_runs
from service.store.models import Experiment
from service.store.runs import pack

# Outside [1/2, 2] x 6ND a reported FLOP count is probably another convention or a typo.
FLOPS_TOLERANCE_FACTOR = 2.0
PROVENANCE_KEYS = ("corpus_hash", "tokenizer_hash")
_CHUNK = 2000


def body_hash(run: RunIn) -> str:
    """A fingerprint of what the client sent: same body, same hash (key order ignored)."""
    return _digest(run.identity())


def _digest(identity: dict[str, Any]) -> str:
    return hashlib.sha256(orjson.dumps(identity, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _flops_warning(index: int, run: RunIn) -> Warning | None:
    if run.flops is None:
        return None
    six_nd = 6.0 * run.params * run.tokens
    # 6ND can underflow to 0 or overflow to infinity for extreme sizes: no finite factor then.
    factor = max(run.flops / six_nd, six_nd / run.flops) if six_nd > 0 else math.inf
    if factor <= FLOPS_TOLERANCE_FACTOR:
        return None
    return Warning(
        code="flops_disagree_6nd",
        message=(
            f"runs[{index}]: flops {run.flops:.4g} differs from 6*params*tokens {six_nd:.4g} "
            f"by a factor of {factor:.3g}"
        ),
        row=index,
    )


def _check_duplicate_keys(runs: Sequence[RunIn]) -> None:
    first_row: dict[str, int] = {}
    duplicates = []
    for index, run in enumerate(runs):
        if run.run_key is None:
            continue
        if run.run_key in first_row:
            duplicates.append({"run_key": run.run_key, "rows": [first_row[run.run_key], index]})
        else:
            first_row[run.run_key] = index
    if duplicates:
        raise InvalidInputError(
            "a run_key appears more than once in the batch", duplicates=duplicates
        )


def _pin_provenance(session: Session, experiment: Experiment, runs: Sequence[RunIn]) -> None:
    """Refuse runs whose corpus or tokenizer differ from the experiment's (the first one wins)."""
    tagged = {
        key: {
            (index, str(run.metadata[key])) for index, run in enumerate(runs) if key in run.metadata
        }
        for key in PROVENANCE_KEYS
    }
    if any(seen and getattr(experiment, key) is None for key, seen in tagged.items()):
        # Lock the row so two first batches cannot pin different values.
        session.refresh(experiment, with_for_update=True)
    for key, seen in tagged.items():
        if not seen:
            continue
        pinned = getattr(experiment, key)
        expected = pinned if pinned is not None else min(seen)[1]
        mismatched = sorted(index for index, value in seen if value != expected)
        if mismatched:
            raise ProvenanceMismatchError(
                f"runs at rows {mismatched[:10]} have a {key} other than the experiment's "
                f"{expected!r}; runs from another corpus or tokenizer need another experiment",
                field=f"metadata.{key}",
                expected=expected,
                rows=mismatched,
            )
        if pinned is None:
            setattr(experiment, key, expected)


def _existing(session: Session, experiment_id: int, keys: list[str]) -> dict[str, tuple[int, str]]:
    found: dict[str, tuple[int, str]] = {}
    for start in range(0, len(keys), _CHUNK):
        rows = session.execute(
            sa.select(RUNS.c.run_key, RUNS.c.id, RUNS.c.body_hash).where(
                RUNS.c.experiment_id == experiment_id,
                RUNS.c.run_key.in_(keys[start : start + _CHUNK]),
            )
        )
        found.update({key: (run_id, digest) for key, run_id, digest in rows})
    return found


def _raise_on_mismatch(existing: dict[str, tuple[int, str]], hashes: dict[str, str]) -> None:
    conflicting = sorted(key for key, (_, digest) in existing.items() if hashes[key] != digest)
    if conflicting:
        raise RunKeyConflictError(
            f"run_key {conflicting[0]!r} already exists with a different body"
            + (f" (and {len(conflicting) - 1} more)" if len(conflicting) > 1 else ""),
            run_keys=conflicting[:100],
        )


def _row(run: RunIn, digest: str) -> dict[str, Any]:
    """The stored row of a run."""
    return {
        "run_key": run.run_key,
        "params": run.params,
        "tokens": run.tokens,
        "flops": 6.0 * run.params * run.tokens if run.flops is None else run.flops,
        "flops_derived": run.flops is None,
        "loss": run.loss,
        "unique_tokens": run.unique_tokens,
        "seed": run.seed,
        "hyperparameters": orjson.dumps(run.hyperparameters).decode(),
        "metadata": orjson.dumps(run.metadata).decode(),
        "source": run.source,
        "body_hash": digest,
        "loss_provenance": run.loss_provenance,
        "cooldown_fraction": run.cooldown_fraction,
        "trunk_key": run.trunk_key,
        "curve_points": 0 if run.curve is None else len(run.curve.tokens),
    }


def ingest_runs(
    session: Session, experiment: Experiment, runs: Sequence[RunIn], policy: FitPolicy
) -> RunBatchResult:
    """Store `runs` in `experiment` in the caller's transaction; raise before it commits
    anything (the caller's transaction rolls back).

    New runs make the experiment's fits stale and schedule a refit of each.
    """
    _check_duplicate_keys(runs)
    _pin_provenance(session, experiment, runs)
    warnings = [w for index, run in enumerate(runs) if (w := _flops_warning(index, run))]
    hashes = [body_hash(run) for run in runs]
    keyed = {run.run_key: digest for run, digest in zip(runs, hashes, strict=True) if run.run_key}

    now = datetime.now(UTC)
    keyed_rows: list[dict[str, Any]] = []
    unkeyed_rows: list[dict[str, Any]] = []
    for run, digest in zip(runs, hashes, strict=True):
        (unkeyed_rows if run.run_key is None else keyed_rows).append(_row(run, digest))
    # One lock order for every transaction: concurrent overlapping batches cannot deadlock.
    keyed_rows.sort(key=lambda row: row["run_key"])
    # Keys already stored (earlier or by a concurrent batch) are skipped by the insert (ON
    # CONFLICT DO NOTHING): only those are looked up, and a different body refuses the batch,
    # rolling back what this insert stored. A batch of new runs costs no lookup at all.
    stored = insert_runs(session, experiment.id, now, keyed_rows + unkeyed_rows)
    inserted = {key: run_id for run_id, key in stored if key is not None}
    skipped = [row["run_key"] for row in keyed_rows if row["run_key"] not in inserted]
    existing = _existing(session, experiment.id, skipped) if skipped else {}
    _raise_on_mismatch(existing, keyed)
    unkeyed_ids = iter(sorted(run_id for run_id, key in stored if key is None))

    statuses: list[dict[str, Any]] = []
    for run in runs:
        key = run.run_key
        if key is None:
            statuses.append({"id": next(unkeyed_ids), "run_key": None, "status": "created"})
        elif key in inserted:
            statuses.append({"id": inserted[key], "run_key": key, "status": "created"})
        else:
            statuses.append({"id": existing[key][0], "run_key": key, "status": "existing"})
    insert_curves(
        session,
        [
            {
                "run_id": status["id"],
                "points": len(run.curve.tokens),
                "tokens": pack(run.curve.tokens),
                "loss": pack(run.curve.loss),
            }
            for run, status in zip(runs, statuses, strict=True)
            if run.curve is not None and status["status"] == "created"
        ],
    )
    created = sum(status["status"] == "created" for status in statuses)
    if created:
        experiment.updated_at = now
        runs_changed(session, experiment, policy)
    # One validation of plain dicts: ~10x cheaper than a RunStatus object per run.
    return RunBatchResult.model_validate(
        {
            "created": created,
            "existing": len(statuses) - created,
            "runs": statuses,
            "warnings": warnings,
        }
    )
