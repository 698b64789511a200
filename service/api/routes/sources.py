"""Sources: MLflow tracking servers an experiment's runs are pulled from."""

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status
from sqlalchemy.orm import object_session

from service.api.deps import (
    Admin,
    ExperimentDep,
    FitPolicyDep,
    Reader,
    SessionDep,
    SettingsDep,
    Writer,
)
from service.schemas.common import MAX_ID, errors
from service.schemas.sources import MlflowSourceIn, MlflowSourceOut, SourcePatch, SyncResult
from service.sources import export as exports
from service.sources import sync as sources
from service.store.models import Source

router = APIRouter(tags=["sources"])
SourceId = Annotated[int, Path(ge=1, le=MAX_ID, description="The source's id.", examples=[1])]


def source_out(source: Source) -> MlflowSourceOut:
    session = object_session(source)
    assert session is not None
    return MlflowSourceOut.model_validate(
        {
            "id": source.id,
            "experiment": source.experiment.name,
            "kind": source.kind,
            "server": source.server,
            **source.config,
            "schedule_seconds": source.schedule_seconds,
            "watermark_ms": source.watermark_ms,
            "last_sync_at": source.last_sync_at,
            "last_result": source.last_result,
            "last_error": source.last_error,
            "log_results": source.log_results,
            "exported_fits": exports.exported_count(session, source.id),
            "last_export_at": source.last_export_at,
            "last_export_error": source.last_export_error,
            "created_at": source.created_at,
        }
    )


@router.post(
    "/v1/experiments/{name}/sources",
    status_code=status.HTTP_201_CREATED,
    summary="Attach an MLflow source",
    description="Pull the finished runs of MLflow experiments on a tracking server the operator "
    "configured (`SCALING_MLFLOW_SERVERS`, by name) into this experiment: each MLflow run "
    "becomes one run with run_key `mlflow:<run id>`, its fields taken from MLflow params, "
    "metrics or tags by `mapping`. Syncs run on demand (`POST /v1/sources/{id}:sync`) and, with "
    "`schedule_seconds`, from the worker. With `log_results`, the worker also logs each "
    "succeeded fit of this experiment back to MLflow as a run (docs/integrations.md). Needs "
    "`write`.",
    responses=errors(404),
)
def create_source(
    experiment: ExperimentDep,
    body: MlflowSourceIn,
    session: SessionDep,
    settings: SettingsDep,
    _: Writer,
) -> MlflowSourceOut:
    return source_out(sources.create(session, experiment, body, settings))


@router.get(
    "/v1/experiments/{name}/sources",
    summary="List an experiment's sources",
    description="Needs `read`.",
    responses=errors(404),
)
def list_sources(
    experiment: ExperimentDep, session: SessionDep, _: Reader
) -> list[MlflowSourceOut]:
    return [source_out(source) for source in sources.list_for(session, experiment)]


@router.get(
    "/v1/sources/{source_id}",
    summary="Get a source",
    description="Its settings, watermark and the result of its last sync. Needs `read`.",
    responses=errors(404),
)
def get_source(source_id: SourceId, session: SessionDep, _: Reader) -> MlflowSourceOut:
    return source_out(sources.get(session, source_id))


@router.patch(
    "/v1/sources/{source_id}",
    summary="Change a source",
    description="Turn logging results to MLflow on or off (`log_results`), change where "
    "(`results_experiment_id`) and at which budget (`results_target_flops`) they are logged, or "
    "the sync period (`schedule_seconds`). Fields left out stay; `null` clears an optional one. "
    "Needs `write`.",
    responses=errors(404),
)
def update_source(
    source_id: SourceId, body: SourcePatch, session: SessionDep, _: Writer
) -> MlflowSourceOut:
    return source_out(sources.update(session, source_id, body))


@router.delete(
    "/v1/sources/{source_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Detach a source",
    description="The runs it brought stay. Needs `admin`, as every DELETE.",
    responses=errors(404),
)
def delete_source(source_id: SourceId, session: SessionDep, _: Admin) -> Response:
    session.delete(sources.get(session, source_id))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/v1/sources/{source_id}:sync",
    summary="Sync a source now",
    description="Read the MLflow runs finished since the last sync (`full=true`: all of them), "
    "store the new ones in one all-or-nothing batch, and report the runs that did not map, by "
    "MLflow run id with the reason (nothing of them is stored). Repeating a sync is a no-op. "
    "502 when the MLflow server does not answer. Needs `write`.",
    responses=errors(404, 502),
)
def sync_source(
    source_id: SourceId,
    session: SessionDep,
    settings: SettingsDep,
    policy: FitPolicyDep,
    _: Writer,
    full: Annotated[bool, Query(description="Ignore the watermark: read every run.")] = False,
) -> SyncResult:
    return sources.sync(session, source_id, settings, policy, full=full)
