"""Sources over the database: create, list, and sync (on demand or when due)."""

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from service.errors import InvalidInputError, NotFoundError, SourceUnavailableError
from service.fits.service import FitPolicy
from service.ingest.batch import body_hash, ingest_runs
from service.schemas.runs import RunIn
from service.schemas.sources import (
    CONFIG_FIELDS,
    MlflowSourceIn,
    SourcePatch,
    SyncResult,
    Unmapped,
)
from service.settings import Settings
from service.sources.mapping import UnmappableRunError, map_run
from service.sources.mlflow_rest import MlflowRestClient, MlflowRun
from service.store.models import Experiment, Run, Source

ClientFactory = Callable[[str, Settings], MlflowRestClient]


def default_client(name: str, settings: Settings) -> MlflowRestClient:
    return MlflowRestClient(name, settings.mlflow_servers[name])


def create(
    session: Session, experiment: Experiment, body: MlflowSourceIn, settings: Settings
) -> Source:
    if body.server not in settings.mlflow_servers:
        configured = sorted(settings.mlflow_servers) or "none (SCALING_MLFLOW_SERVERS is empty)"
        raise InvalidInputError(
            f"unknown MLflow server {body.server!r}; configured: {configured}", field="server"
        )
    source = Source(
        experiment_id=experiment.id,
        kind="mlflow",
        server=body.server,
        config=body.model_dump(mode="json", include=set(CONFIG_FIELDS)),
        schedule_seconds=body.schedule_seconds,
        next_sync_at=datetime.now(UTC) if body.schedule_seconds else None,
        log_results=body.log_results,
    )
    session.add(source)
    session.flush()
    return source


def update(session: Session, source_id: int, patch: SourcePatch) -> Source:
    """Change what the patch names: log_results, the results options (null clears them) and
    schedule_seconds (null: on demand only). Turning log_results on clears a failure's wait."""
    source = get(session, source_id, for_update=True)
    given = patch.model_fields_set
    if "log_results" in given:
        if patch.log_results is None:
            raise InvalidInputError("log_results is true or false, not null", field="log_results")
        if patch.log_results and not source.log_results:
            source.export_not_before = None
        source.log_results = patch.log_results
    config = dict(source.config)
    for name in ("results_experiment_id", "results_target_flops"):
        if name in given:
            config[name] = getattr(patch, name)
    source.config = config
    if "schedule_seconds" in given:
        source.schedule_seconds = patch.schedule_seconds
        source.next_sync_at = datetime.now(UTC) if patch.schedule_seconds else None
    session.flush()
    return source


def get(session: Session, source_id: int, *, for_update: bool = False) -> Source:
    query = sa.select(Source).where(Source.id == source_id)
    if for_update:
        query = query.with_for_update()
    source = session.scalar(query)
    if source is None:
        raise NotFoundError(f"source {source_id} not found", source_id=source_id)
    return source


def list_for(session: Session, experiment: Experiment) -> list[Source]:
    return list(
        session.scalars(
            sa.select(Source).where(Source.experiment_id == experiment.id).order_by(Source.id)
        )
    )


def _classify(
    session: Session, experiment: Experiment, mapped: list[RunIn]
) -> tuple[list[RunIn], int, list[Unmapped]]:
    """(new runs, how many are stored already with the same values, changed ones)."""
    keys = [run.run_key for run in mapped if run.run_key]
    stored = {
        key: (run_id, digest)
        for key, run_id, digest in session.execute(
            sa.select(Run.run_key, Run.id, Run.body_hash).where(
                Run.experiment_id == experiment.id, Run.run_key.in_(keys)
            )
        )
    }
    new, unchanged, changed = [], 0, []
    for run in mapped:
        if run.run_key not in stored:
            new.append(run)
        elif stored[run.run_key][1] == body_hash(run):
            unchanged += 1
        else:
            run_id = stored[run.run_key][0]
            changed.append(
                Unmapped(
                    mlflow_run_id=str(run.metadata["mlflow_run_id"]),
                    reason=f"changed in MLflow since it was stored as run {run_id}; stored runs "
                    "are not rewritten (delete that run to take the new values)",
                )
            )
    return new, unchanged, changed


def sync(
    session: Session,
    source_id: int,
    settings: Settings,
    policy: FitPolicy,
    *,
    full: bool = False,
    client_factory: ClientFactory = default_client,
) -> SyncResult:
    """Pull the finished MLflow runs ended since the watermark (all of them with ``full``),
    store the new ones in one all-or-nothing batch, and record the result on the source.

    Runs that do not map are reported with the reason and nothing of them is stored; so are
    runs that changed in MLflow after they were stored. The source row is locked for the sync,
    so two syncs of one source do not interleave.
    """
    source = get(session, source_id, for_update=True)
    if source.server not in settings.mlflow_servers:
        raise SourceUnavailableError(f"MLflow server {source.server!r} is no longer configured")
    config = MlflowSourceIn.model_validate({"server": source.server, **source.config})
    since = None if full else source.watermark_ms
    with client_factory(source.server, settings) as client:
        runs = client.search_finished_runs(config.experiment_ids, config.filter, since)
        mapped: list[RunIn] = []
        unmapped: list[Unmapped] = []
        for run in runs:
            try:
                mapped.append(map_run(run, config.mapping, client.metric_history))
            except UnmappableRunError as exc:
                unmapped.append(Unmapped(mlflow_run_id=run.run_id, reason=str(exc)))
    new, unchanged, changed = _classify(session, source.experiment, mapped)
    stored = ingest_runs(session, source.experiment, new, policy).runs if new else []
    now = datetime.now(UTC)
    result = SyncResult(
        created=sum(run.status == "created" for run in stored),
        unchanged=unchanged + sum(run.status == "existing" for run in stored),
        unmapped=unmapped + changed,
        run_ids=[run.id for run in stored if run.status == "created"],
        watermark_ms=_watermark(source.watermark_ms, runs),
        synced_at=now,
    )
    source.watermark_ms = result.watermark_ms
    source.last_sync_at = now
    source.last_result = result.model_dump(mode="json")
    source.last_error = None
    if source.schedule_seconds:
        source.next_sync_at = now + timedelta(seconds=source.schedule_seconds)
    session.flush()
    return result


def _watermark(previous: int | None, runs: list[MlflowRun]) -> int | None:
    ends = [run.end_time_ms for run in runs if run.end_time_ms is not None]
    if previous is not None:
        ends.append(previous)
    return max(ends) if ends else None


def due(session: Session, now: datetime, limit: int = 10) -> list[int]:
    """Ids of scheduled sources whose next sync time has come."""
    query = (
        sa.select(Source.id)
        .where(Source.next_sync_at.is_not(None), Source.next_sync_at <= now)
        .order_by(Source.next_sync_at)
        .limit(limit)
    )
    return list(session.scalars(query))


def record_failure(session: Session, source_id: int, message: str) -> None:
    """A scheduled sync failed: say why on the source and try again at the next period."""
    source = get(session, source_id)
    source.last_error = message
    if source.schedule_seconds:
        source.next_sync_at = datetime.now(UTC) + timedelta(seconds=source.schedule_seconds)
    session.flush()
