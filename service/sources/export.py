"""Results back to MLflow: the worker logs each succeeded fit of a source's experiment as one run
in an MLflow experiment, when the source has ``log_results`` (docs/integrations.md).

Exactly once per source and fit, crash or not: the MLflow run carries the tags
``scaling.fit_id`` and ``scaling.source_id`` and is marked FINISHED only once everything is
logged. Before creating one, the export searches for it: a FINISHED one is recorded as the
export (the worker died after MLflow had it but before the database did); an unfinished one
(the worker died while logging) is deleted and logged again. The source row is locked for
the export (on PostgreSQL), so two workers do not log one fit twice.
"""

import contextlib
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from service.errors import NotFoundError, SourceUnavailableError
from service.fits.cache import FitCache
from service.schemas.sources import MlflowSourceIn
from service.settings import Settings
from service.sources.mlflow_rest import MlflowRestClient, MlflowRun, UnproxiedArtifactsError
from service.sources.results import (
    EXPERIMENT_TAG,
    FIT_ID_TAG,
    SOURCE_ID_TAG,
    FitRecord,
    describe,
    target_flops,
)
from service.sources.sync import ClientFactory, default_client, get
from service.store import fits as fit_store
from service.store.models import Fit, Source, SourceExport

# After a failed export, the source's next attempt waits this long (an MLflow server that is
# down must not cost every worker tick a timeout).
RETRY_AFTER = timedelta(seconds=60)
FITS_PER_TICK = 5


def due(session: Session, now: datetime, limit: int = 20) -> list[int]:
    """Ids of the sources that log results and are not waiting out a failure."""
    query = (
        sa.select(Source.id)
        .where(
            Source.log_results.is_(True),
            sa.or_(Source.export_not_before.is_(None), Source.export_not_before <= now),
        )
        .order_by(Source.id)
        .limit(limit)
    )
    return list(session.scalars(query))


def pending_fits(session: Session, source_id: int, limit: int = FITS_PER_TICK) -> list[int]:
    """The source's experiment's succeeded fits it has not logged yet, oldest first."""
    exported = sa.select(SourceExport.fit_id).where(SourceExport.source_id == source_id)
    query = (
        sa.select(Fit.id)
        .join(Source, Source.experiment_id == Fit.experiment_id)
        .where(Source.id == source_id, fit_store.status_is("succeeded"), Fit.id.not_in(exported))
        .order_by(Fit.id)
        .limit(limit)
    )
    return list(session.scalars(query))


def _filter(source_id: int, fit_row: Fit) -> str:
    experiment = fit_row.experiment.name  # a slug: no quotes to escape
    return (
        f"tags.`{FIT_ID_TAG}` = '{fit_row.id}' AND tags.`{SOURCE_ID_TAG}` = '{source_id}' "
        f"AND tags.`{EXPERIMENT_TAG}` = '{experiment}'"
    )


def _log(client: MlflowRestClient, experiment_id: str, record: FitRecord) -> MlflowRun:
    run = client.create_run(experiment_id, run_name=record.run_name, tags=record.tags)
    try:
        client.log_batch(run.run_id, params=record.params, metrics=record.metrics)
        for artifact in record.artifacts:
            try:
                client.upload_artifact(
                    run, artifact.path, artifact.content, content_type=artifact.content_type
                )
            except UnproxiedArtifactsError as exc:
                client.log_batch(run.run_id, tags={"scaling.artifacts_not_logged": str(exc)})
                break
        client.update_run(run.run_id, "FINISHED")
    except SourceUnavailableError:
        # Leave no half-logged run behind if MLflow lets us; the next attempt deletes it anyway.
        with contextlib.suppress(SourceUnavailableError):
            client.delete_run(run.run_id)
        raise
    return run


def export_fit(
    session: Session,
    source_id: int,
    fit_id: int,
    settings: Settings,
    cache: FitCache,
    *,
    client_factory: ClientFactory = default_client,
) -> SourceExport:
    """Log one succeeded fit to the source's MLflow results experiment, once; returns the
    export's row (the one already stored when the fit was logged before)."""
    source = get(session, source_id, for_update=True)
    stored = session.scalar(
        sa.select(SourceExport).where(
            SourceExport.source_id == source_id, SourceExport.fit_id == fit_id
        )
    )
    if stored is not None:
        return stored
    if source.server not in settings.mlflow_servers:
        raise SourceUnavailableError(f"MLflow server {source.server!r} is no longer configured")
    config = MlflowSourceIn.model_validate({"server": source.server, **source.config})
    experiment_id = config.results_experiment_id or config.experiment_ids[0]
    fit_row = session.get(Fit, fit_id)
    if fit_row is None or fit_row.status != "succeeded":
        raise NotFoundError(f"fit {fit_id} is not a succeeded fit", fit_id=fit_id)
    with client_factory(source.server, settings) as client:
        found = client.search_runs([experiment_id], _filter(source_id, fit_row))
        finished = [run for run in found if run.status == "FINISHED"]
        for partial in (run for run in found if run.status != "FINISHED"):
            client.delete_run(partial.run_id)
        if finished:
            run = finished[0]
        else:
            target = target_flops(fit_row.experiment, config.results_target_flops)
            record = describe(session, fit_row, source_id=source_id, target=target, cache=cache)
            run = _log(client, experiment_id, record)
    export = SourceExport(
        source_id=source_id,
        fit_id=fit_id,
        mlflow_experiment_id=experiment_id,
        mlflow_run_id=run.run_id,
    )
    session.add(export)
    source.last_export_at = datetime.now(UTC)
    source.last_export_error = None
    source.export_not_before = None
    session.flush()
    return export


def record_failure(session: Session, source_id: int, message: str) -> None:
    """An export failed: say why on the source and try again after RETRY_AFTER."""
    source = get(session, source_id)
    source.last_export_error = message
    source.export_not_before = datetime.now(UTC) + RETRY_AFTER
    session.flush()


def exported_count(session: Session, source_id: int) -> int:
    return int(
        session.scalar(sa.select(sa.func.count()).where(SourceExport.source_id == source_id)) or 0
    )
