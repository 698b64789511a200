"""The dashboard at /ui: server-rendered HTML over the service's own functions, no JavaScript."""

from urllib.parse import quote

from fastapi import FastAPI, Request, Response
from fastapi.responses import RedirectResponse

from service.ui.auth import LoginRequiredError, ScopeMissingError
from service.ui.origin import CrossSiteFormError
from service.ui.render import page
from service.ui.routes import router


async def _login_required(request: Request, exc: Exception) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/ui/login?next={quote(target, safe='')}", 303)


async def _scope_missing(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ScopeMissingError)
    message = f"this page needs an API key with the {exc.scope} scope"
    return page(request, "error.html", {"message": message}, status_code=403)


async def _cross_site(request: Request, exc: Exception) -> Response:
    message = "forms are accepted from this dashboard's own pages only"
    return page(request, "error.html", {"message": message}, status_code=403)


async def _home() -> Response:
    """`/` is where people land: the dashboard (which asks for a key where auth is on)."""
    return RedirectResponse("/ui", 307)


def install(app: FastAPI) -> None:
    app.include_router(router)
    app.add_api_route("/", _home, include_in_schema=False)
    app.add_exception_handler(LoginRequiredError, _login_required)
    app.add_exception_handler(ScopeMissingError, _scope_missing)
    app.add_exception_handler(CrossSiteFormError, _cross_site)
