"""Experiments: create, list, read, update, delete."""

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from service.api.deps import (
    Admin,
    ExperimentDep,
    PageLimit,
    PageToken,
    Reader,
    SessionDep,
    SettingsDep,
    Writer,
    page_size,
)
from service.schemas.common import Page, errors
from service.schemas.experiments import ExperimentCreate, ExperimentOut, ExperimentPatch
from service.store import experiments as store
from service.store.models import Experiment
from service.store.pagination import decode_token, split_page

router = APIRouter(prefix="/v1/experiments", tags=["experiments"])


def _out(experiment: Experiment, run_count: int) -> ExperimentOut:
    return ExperimentOut(
        name=experiment.name,
        description=experiment.description,
        param_convention=experiment.param_convention,
        flops_formula=experiment.flops_formula,
        metadata=experiment.metadata_,
        corpus_hash=experiment.corpus_hash,
        tokenizer_hash=experiment.tokenizer_hash,
        run_count=run_count,
        created_at=experiment.created_at,
        updated_at=experiment.updated_at,
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Create an experiment",
    description="An experiment groups runs that are fitted together: same data, tokenizer and "
    "architecture family. `param_convention` and `flops_formula` say how its runs count "
    "parameters and FLOPs. Needs the `write` scope.",
    responses=errors(409),
)
def create_experiment(body: ExperimentCreate, session: SessionDep, _: Writer) -> ExperimentOut:
    experiment = store.create(
        session,
        name=body.name,
        description=body.description,
        param_convention=body.param_convention,
        flops_formula=body.flops_formula,
        metadata_=body.metadata,
    )
    return _out(experiment, 0)


@router.get(
    "",
    summary="List experiments",
    description="Experiments in creation order, a page at a time: pass `next_page_token` back "
    "as `page_token`. Needs the `read` scope.",
    responses=errors(),
)
def list_experiments(
    session: SessionDep,
    settings: SettingsDep,
    _: Reader,
    limit: PageLimit = None,
    page_token: PageToken = None,
) -> Page[ExperimentOut]:
    limit = page_size(limit, settings, default=100)
    rows = store.list_page(session, decode_token(page_token, {}), limit + 1)
    page, next_token = split_page(rows, limit, {})
    counts = store.run_counts(session, [e.id for e in page])
    return Page[ExperimentOut](
        items=[_out(e, counts.get(e.id, 0)) for e in page], next_page_token=next_token
    )


@router.get(
    "/{name}",
    summary="Get an experiment",
    description="One experiment with its run count. Needs the `read` scope.",
    responses=errors(404),
)
def get_experiment(experiment: ExperimentDep, session: SessionDep, _: Reader) -> ExperimentOut:
    return _out(experiment, store.run_counts(session, [experiment.id]).get(experiment.id, 0))


@router.patch(
    "/{name}",
    summary="Update an experiment",
    description="Change the description or replace the metadata. The parameter and FLOP "
    "conventions are fixed at creation, since stored runs were counted that way. Needs `write`.",
    responses=errors(404),
)
def update_experiment(
    body: ExperimentPatch, experiment: ExperimentDep, session: SessionDep, _: Writer
) -> ExperimentOut:
    if body.description is not None:
        experiment.description = body.description
    if body.metadata is not None:
        experiment.metadata_ = body.metadata
    session.flush()
    return _out(experiment, store.run_counts(session, [experiment.id]).get(experiment.id, 0))


@router.delete(
    "/{name}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete an experiment",
    description="Refused (409) while the experiment has runs, unless `force=true`, which deletes "
    "its runs too. Needs the `admin` scope.",
    responses=errors(404, 409),
)
def delete_experiment(
    experiment: ExperimentDep,
    session: SessionDep,
    _: Admin,
    force: Annotated[bool, Query(description="Delete the experiment's runs too.")] = False,
) -> Response:
    store.delete(session, experiment, force=force)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
