"""Fits of an experiment's runs: request, list, the one in force, one by id."""

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status

from service.api.deps import (
    ExperimentDep,
    FitCacheDep,
    FitPolicyDep,
    PageToken,
    Reader,
    SessionDep,
    SettingsDep,
    Writer,
    page_size,
)
from service.errors import InvalidInputError, NotFoundError
from service.fits.plots import render_fit_plot
from service.fits.present import fit_out
from service.fits.service import request_fit
from service.schemas.common import MAX_ID, Page, errors
from service.schemas.fits import FitCreate, FitOut, LawName, MethodName
from service.store import fits as store
from service.store.pagination import decode_token, split_page

router = APIRouter(tags=["fits"])

FitId = Annotated[int, Path(ge=1, le=MAX_ID, description="The fit's id.", examples=[1])]


@router.post(
    "/v1/experiments/{name}/fits",
    status_code=status.HTTP_201_CREATED,
    summary="Fit a scaling law to an experiment's runs",
    description="Fits the experiment's included runs (or a filtered subset). A small fit answers "
    "201 with the result; one with a large bootstrap answers 202 and runs in the background: "
    "follow `Location` (GET /v1/fits/{id}) for progress and ETA. Data that cannot identify the "
    "law gives 422 naming what is missing. Needs `write`.",
    responses={202: {"description": "Queued; poll the fit.", "model": FitOut}, **errors(404)},
)
def create_fit(
    body: FitCreate,
    experiment: ExperimentDep,
    session: SessionDep,
    settings: SettingsDep,
    policy: FitPolicyDep,
    response: Response,
    _: Writer,
) -> FitOut:
    if body.bootstrap > settings.max_bootstrap:
        raise InvalidInputError(
            f"bootstrap is limited to {settings.max_bootstrap} resamples",
            field="bootstrap",
            limit=settings.max_bootstrap,
        )
    fit_row = request_fit(session, experiment, body.law, body.method, body.settings(), policy)
    if fit_row.status == "queued":
        response.status_code = status.HTTP_202_ACCEPTED
    response.headers["Location"] = f"/v1/fits/{fit_row.id}"
    return fit_out(fit_row)


@router.get(
    "/v1/experiments/{name}/fits",
    summary="List an experiment's fits",
    description="Newest first, every status, a page at a time. Needs `read`.",
    responses=errors(404),
)
def list_fits(
    experiment: ExperimentDep,
    session: SessionDep,
    settings: SettingsDep,
    _: Reader,
    limit: Annotated[
        int | None,
        Query(ge=1, le=1000, description="Page size (default 50, at most SCALING_MAX_PAGE_SIZE)."),
    ] = None,
    page_token: PageToken = None,
) -> Page[FitOut]:
    limit = page_size(limit, settings, default=50)
    rows = store.list_page(session, experiment.id, decode_token(page_token, {}), limit + 1)
    page, next_token = split_page(rows, limit, {})
    return Page[FitOut](items=[fit_out(row) for row in page], next_page_token=next_token)


@router.get(
    "/v1/experiments/{name}/fits/current",
    summary="The fit in force",
    description="The latest succeeded fit of this law and method; `stale` says whether runs "
    "changed since (a refit is then scheduled). 404 when there is none. Needs `read`.",
    responses=errors(404),
)
def get_current_fit(
    experiment: ExperimentDep,
    session: SessionDep,
    _: Reader,
    law: LawName = "chinchilla",
    method: MethodName = "parametric",
) -> FitOut:
    fit_row = store.current(session, experiment.id, law, method)
    if fit_row is None:
        raise NotFoundError(
            f"experiment {experiment.name!r} has no succeeded {method} {law} fit",
            experiment=experiment.name,
            law=law,
            method=method,
        )
    return fit_out(fit_row)


@router.get(
    "/v1/fits/{fit_id}",
    summary="Get a fit",
    description="Status, progress and ETA while it runs; parameters, intervals, goodness of fit "
    "and provenance (run ids and their hash, settings, code version) once done. Needs `read`.",
    responses=errors(404),
)
def get_fit(fit_id: FitId, session: SessionDep, _: Reader) -> FitOut:
    return fit_out(store.get(session, fit_id))


@router.get(
    "/v1/fits/{fit_id}/plots/{kind}.svg",
    summary="A plot of a fit (SVG)",
    description="`isoflop`: loss vs params per compute budget with the fitted curves and optima; "
    "`frontier`: N_opt and D_opt vs compute with bootstrap bands and the runs; `residuals`: "
    "log(predicted / observed loss) per run with outliers marked. Needs `read`.",
    response_class=Response,
    responses={
        200: {"content": {"image/svg+xml": {}}, "description": "An SVG document."},
        **errors(404, 409),
    },
)
def get_fit_plot(
    fit_id: FitId,
    kind: Annotated[str, Path(examples=["isoflop"], description="isoflop, frontier, residuals")],
    session: SessionDep,
    cache: FitCacheDep,
    _: Reader,
) -> Response:
    return Response(
        render_fit_plot(session, store.get(session, fit_id), kind, cache),
        media_type="image/svg+xml",
    )
