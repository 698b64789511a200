"""Authenticate before a body is read: a POST, PUT or PATCH to the API (/v1) from a caller
without a valid key is answered 401 at once, so bogus keys never make a process buffer bodies
of up to SCALING_MAX_BODY_BYTES (FastAPI reads a route's JSON body before its dependencies)."""

from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.types import ASGIApp, Receive, Scope, Send

from service import auth
from service.api.caller import principal_of
from service.envelope import response_of
from service.errors import AuthenticationError

_WRITES = ("POST", "PUT", "PATCH")


class AuthBeforeBodyMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] not in _WRITES
            or not scope["path"].startswith("/v1/")
        ):
            await self.app(scope, receive, send)
            return
        try:
            principal = await principal_of(scope)
        except (OperationalError, PoolTimeoutError):
            principal = auth.ANONYMOUS  # unknown yet: the route reports the outage
        if principal is not None:
            await self.app(scope, receive, send)
            return
        refusal = response_of(AuthenticationError(), {"WWW-Authenticate": "Bearer"})
        await refusal(scope, receive, send)
