"""Typed dependencies: the session, the caller and their scope, and path lookups that 404."""

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Path, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session, sessionmaker

from service import auth
from service.api.caller import verified
from service.db import session_scope
from service.errors import AuthenticationError, InvalidInputError, PermissionDeniedError
from service.fits.answers import AnswerCache
from service.fits.cache import FitCache
from service.fits.service import FitPolicy
from service.schemas.experiments import ExperimentName
from service.settings import Settings
from service.store import experiments as experiment_store
from service.store.models import Experiment

bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer ss_...`")


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_session(request: Request) -> Iterator[Session]:
    """One transaction per request, committed before the response is sent."""
    with session_scope(request.app.state.session_factory) as session:
        yield session


SettingsDep = Annotated[Settings, Depends(get_settings)]
# scope="function": commit right after the route returns, so a failed commit is never a 2xx.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]


async def get_principal(
    request: Request,
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> auth.Principal:
    if not settings.auth:
        return auth.ANONYMOUS
    if credentials is None:
        raise AuthenticationError()
    principal = await authenticate(request, credentials.credentials)
    if principal is None:
        raise AuthenticationError("unknown or revoked API key")
    return principal


async def authenticate(request: Request, token: str) -> auth.Principal | None:
    """The principal of an API key (through the key cache), recorded on the request; None for an
    unknown or revoked key. The dashboard's cookie login uses it too."""
    principal = await verified(request.app.state, token)
    if principal is not None:
        request.state.principal = principal
    return principal


class ScopeCheck:
    """The dependency that lets a caller with `scope` through; `required_scope` is read by the
    scope-walk test."""

    def __init__(self, scope: str) -> None:
        self.required_scope = scope

    # async: a pure check, so FastAPI need not hop to a worker thread for it.
    async def __call__(
        self, principal: Annotated[auth.Principal, Depends(get_principal)]
    ) -> auth.Principal:
        scope = self.required_scope
        if not principal.has(scope):
            raise PermissionDeniedError(
                f"this operation needs the {scope!r} scope", required_scope=scope
            )
        return principal


def require(scope: str) -> ScopeCheck:
    return ScopeCheck(scope)


Reader = Annotated[auth.Principal, Depends(require("read"))]
Writer = Annotated[auth.Principal, Depends(require("write"))]
Admin = Annotated[auth.Principal, Depends(require("admin"))]


# A list route's paging query: a page size (checked against SCALING_MAX_PAGE_SIZE by page_size)
# and the opaque token of the page before's next_page_token.
PageLimit = Annotated[
    int | None,
    Query(ge=1, le=1000, description="Page size (default 100, at most SCALING_MAX_PAGE_SIZE)."),
]
PageToken = Annotated[str | None, Query(max_length=500)]


def page_size(limit: int | None, settings: Settings, default: int) -> int:
    """`limit` if within `SCALING_MAX_PAGE_SIZE`, else 422 naming the limit; by default the
    smaller of `default` and the limit."""
    if limit is None:
        return min(default, settings.max_page_size)
    if limit > settings.max_page_size:
        raise InvalidInputError(
            f"limit is at most {settings.max_page_size} (SCALING_MAX_PAGE_SIZE); got {limit}",
            field="limit",
            limit=settings.max_page_size,
        )
    return limit


ExperimentPath = Annotated[ExperimentName, Path(description="The experiment's name (slug).")]


def get_experiment(
    name: ExperimentPath,
    session: SessionDep,
    _: Annotated[auth.Principal, Depends(get_principal)],
) -> Experiment:
    """The named experiment; 404 only for an authenticated caller (else 401 first), so that no
    one without a key learns which experiments exist."""
    return experiment_store.get_by_name(session, name)


ExperimentDep = Annotated[Experiment, Depends(get_experiment)]


async def get_fit_policy(request: Request) -> FitPolicy:
    policy: FitPolicy = request.app.state.fit_policy
    return policy


async def get_fit_cache(request: Request) -> FitCache:
    cache: FitCache = request.app.state.fit_cache
    return cache


FitPolicyDep = Annotated[FitPolicy, Depends(get_fit_policy)]
FitCacheDep = Annotated[FitCache, Depends(get_fit_cache)]


async def get_key_cache(request: Request) -> auth.KeyCache:
    cache: auth.KeyCache = request.app.state.key_cache
    return cache


KeyCacheDep = Annotated[auth.KeyCache, Depends(get_key_cache)]


async def get_answer_cache(request: Request) -> AnswerCache:
    cache: AnswerCache = request.app.state.answer_cache
    return cache


async def get_session_factory(request: Request) -> sessionmaker[Session]:
    factory: sessionmaker[Session] = request.app.state.session_factory
    return factory


AnswerCacheDep = Annotated[AnswerCache, Depends(get_answer_cache)]
SessionFactoryDep = Annotated[sessionmaker[Session], Depends(get_session_factory)]
