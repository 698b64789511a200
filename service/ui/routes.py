"""The dashboard's pages: thin routes over the store and the service's functions."""

from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, RedirectResponse
from sqlalchemy.orm import Session

from service.api.deps import FitCacheDep, SessionDep, SettingsDep, authenticate
from service.api.routes.fits import FitId
from service.auth import Principal
from service.errors import NotFoundError, ServiceError
from service.fits.cache import FitCache
from service.fits.plots import render_fit_plot
from service.fits.present import fit_out
from service.fits.recommend import answer, resolve_current
from service.jobs import autofill
from service.overview import experiment_detail, experiments_overview
from service.plots import plots_available
from service.scaling import CATALOGUE, ScalingError
from service.schemas.recommendations import ConstraintsSpec, Recommendation
from service.store import experiments as experiment_store
from service.store import fits as fit_store
from service.store import webhooks as webhook_store
from service.store.models import Experiment
from service.ui import forms
from service.ui.auth import COOKIE, UiReader, UiWriter
from service.ui.origin import same_origin_forms
from service.ui.render import page
from service.webhooks.subscriptions import delivery_out, webhook_out

router = APIRouter(prefix="/ui", include_in_schema=False, dependencies=[Depends(same_origin_forms)])

STATIC = Path(__file__).parent / "static"
LAW, METHOD = "chinchilla", "parametric"
DEFAULT_GPU = "H100-SXM"  # preselected on the recommendation form when catalogued
RUNS_SHOWN, JOBS_SHOWN, EXPERIMENTS_SHOWN = 50, 50, 200
DELIVERIES_SHOWN = 100


async def form_fields(request: Request) -> dict[str, str]:
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


FormDep = Annotated[dict[str, str], Depends(form_fields)]


@router.get("/static/style.css")
def stylesheet() -> FileResponse:
    return FileResponse(STATIC / "style.css", media_type="text/css")


@router.get("")
def index(request: Request, session: SessionDep, principal: UiReader) -> Response:
    summaries = experiments_overview(session, limit=EXPERIMENTS_SHOWN, law=LAW, method=METHOD)
    rows = [
        {
            "experiment": summary.experiment,
            "runs": summary.runs,
            "current": fit_out(summary.current) if summary.current is not None else None,
            "latest": summary.latest,
        }
        for summary in summaries
    ]
    return page(request, "index.html", {"rows": rows, "principal": principal})


@router.get("/webhooks")
def webhooks(request: Request, session: SessionDep, principal: UiReader) -> Response:
    """The webhooks and their latest deliveries (the API: /v1/webhooks)."""
    context = {
        "webhooks": [webhook_out(s) for s in webhook_store.list_subscriptions(session)],
        "deliveries": [
            delivery_out(d) for d in webhook_store.recent_deliveries(session, DELIVERIES_SHOWN)
        ],
        "principal": principal,
    }
    return page(request, "webhooks.html", context)


def _experiment_or_404(request: Request, session: Session, name: str) -> Experiment | Response:
    try:
        return experiment_store.get_by_name(session, name)
    except NotFoundError as exc:
        return page(request, "error.html", {"message": exc.message}, status_code=404)


def _experiment_page(
    request: Request,
    session: Session,
    experiment: Experiment,
    cache: FitCache,
    extra: dict[str, Any],
    status_code: int = 200,
) -> Response:
    detail = experiment_detail(
        session,
        experiment,
        runs_shown=RUNS_SHOWN,
        jobs_shown=JOBS_SHOWN,
        law=LAW,
        method=METHOD,
    )
    context = {
        "experiment": experiment,
        "run_count": detail.run_count,
        "runs": detail.runs,
        "fit": fit_out(detail.current) if detail.current is not None else None,
        "fit_pending": detail.fit_pending,
        "jobs": detail.jobs,
        "autopilot": autofill.status(session, experiment, cache),
        "plots_unavailable": plots_available(),
        "autofill_settings": autofill.settings_of(experiment),
        "gpus": sorted(CATALOGUE),
        "default_gpu": DEFAULT_GPU,
        "form": {"budget_kind": "flops", "confidence": "0.9"},
        "saved": request.query_params.get("saved"),
        **extra,
    }
    return page(request, "experiment.html", context, status_code=status_code)


def _recommend(
    session: Session, experiment: Experiment, form: dict[str, str], cache: FitCache
) -> Recommendation:
    spec, confidence = forms.budget(form), forms.confidence(form)
    try:
        resolved = resolve_current(session, experiment, LAW, METHOD, cache)
        return answer(resolved, spec, ConstraintsSpec(), confidence)
    except (ServiceError, ScalingError) as exc:
        raise forms.FormError([str(exc)]) from None


def _page_with_answer(
    request: Request,
    session: Session,
    name: str,
    form: dict[str, str],
    cache: FitCache,
    principal: Principal,
) -> Response:
    """The experiment page; with a budget in `form`, the recommendation for it too."""
    found = _experiment_or_404(request, session, name)
    if isinstance(found, Response):
        return found
    extra: dict[str, Any] = {"principal": principal}
    if "budget_kind" in form:
        extra["form"] = form
        extra["answer_link"] = f"/ui/experiments/{quote(found.name)}?{urlencode(form)}#answer"
        try:
            extra["answer"] = _recommend(session, found, form, cache)
        except forms.FormError as exc:
            extra["answer_errors"] = exc.messages
            return _experiment_page(request, session, found, cache, extra, status_code=422)
    return _experiment_page(request, session, found, cache, extra)


@router.get("/experiments/{name}")
def experiment_page(
    request: Request, name: str, session: SessionDep, cache: FitCacheDep, principal: UiReader
) -> Response:
    """The experiment; `?budget_kind=flops&flops=1e23` (the answer's link) adds an answer."""
    form = dict(request.query_params)
    return _page_with_answer(request, session, name, form, cache, principal)


# A question, not a change: the read scope, like POST /v1/recommendations.
@router.post("/experiments/{name}/recommendation")
def recommendation(
    request: Request,
    name: str,
    form: FormDep,
    session: SessionDep,
    cache: FitCacheDep,
    principal: UiReader,
) -> Response:
    return _page_with_answer(request, session, name, form, cache, principal)


@router.post("/experiments/{name}/autofill")
def configure_autofill(
    request: Request,
    name: str,
    form: FormDep,
    session: SessionDep,
    cache: FitCacheDep,
    principal: UiWriter,
) -> Response:
    found = _experiment_or_404(request, session, name)
    if isinstance(found, Response):
        return found
    try:
        autofill.configure(session, found, forms.autofill(form))
    except forms.FormError as exc:
        extra = {"principal": principal, "autofill_errors": exc.messages}
        return _experiment_page(request, session, found, cache, extra, status_code=422)
    return RedirectResponse(f"/ui/experiments/{quote(found.name)}?saved=autofill", 303)


@router.get("/fits/{fit_id}/plots/{kind}.svg")
def plot(
    fit_id: FitId, kind: str, session: SessionDep, cache: FitCacheDep, _: UiReader
) -> Response:
    """The API's plot (GET /v1/fits/{id}/plots/{kind}.svg) behind the dashboard's cookie."""
    svg = render_fit_plot(session, fit_store.get(session, fit_id), kind, cache)
    return Response(svg, media_type="image/svg+xml")


def _next(target: str | None) -> str:
    """Only a dashboard path: never an open redirect to another site."""
    if target and target.startswith("/ui") and not target.startswith("//"):
        return target
    return "/ui"


@router.get("/login")
def login_form(request: Request, settings: SettingsDep, next: str | None = None) -> Response:
    context = {"next": _next(next), "auth": settings.auth}
    return page(request, "login.html", context)


@router.post("/login")
async def login(request: Request, settings: SettingsDep, form: FormDep) -> Response:
    target = _next(form.get("next"))
    token = form.get("api_key", "").strip()
    if not settings.auth:
        return RedirectResponse(target, 303)
    principal = await authenticate(request, token) if token else None
    if principal is None:
        context = {"next": target, "auth": True, "error": "unknown or revoked API key"}
        return await run_in_threadpool(page, request, "login.html", context, 401)
    response = RedirectResponse(target, 303)
    response.set_cookie(
        COOKIE,
        token,
        path="/ui",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@router.post("/logout")
def logout() -> Response:
    response = RedirectResponse("/ui/login", 303)
    response.delete_cookie(COOKIE, path="/ui", httponly=True, samesite="strict")
    return response
