"""The dashboard's auth: the API's keys and scopes, sent as a bearer header or kept in a cookie.

`/ui/login` takes an API key and stores it in an HttpOnly, SameSite=Strict cookie; every page
then verifies it exactly like the API verifies a bearer token (`service.auth` through the key
cache). The cookie holds the key itself: acceptable for this internal tool (HttpOnly keeps it from
scripts, SameSite=Strict from cross-site form posts, Secure is set over HTTPS), and revoking the
key logs the browser out. A page without a key redirects to the login page.
"""

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials

from service import auth
from service.api.deps import SettingsDep, authenticate, bearer

COOKIE = "scaling_ui_key"


class LoginRequiredError(Exception):
    """No key, or one that is unknown or revoked: the handler sends the browser to /ui/login."""


class ScopeMissingError(Exception):
    """A valid key without the scope the page or form needs (rendered as a 403 page)."""

    def __init__(self, scope: str) -> None:
        super().__init__(scope)
        self.scope = scope


async def ui_principal(
    request: Request,
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> auth.Principal:
    if not settings.auth:
        return auth.ANONYMOUS
    token = credentials.credentials if credentials is not None else request.cookies.get(COOKIE)
    if not token:
        raise LoginRequiredError()
    principal = await authenticate(request, token)
    if principal is None:
        raise LoginRequiredError()
    return principal


class UiScopeCheck:
    """The page dependency that lets a caller with `scope` through; `required_scope` is read by
    the scope-walk test."""

    def __init__(self, scope: str) -> None:
        self.required_scope = scope

    async def __call__(
        self, principal: Annotated[auth.Principal, Depends(ui_principal)]
    ) -> auth.Principal:
        if not principal.has(self.required_scope):
            raise ScopeMissingError(self.required_scope)
        return principal


def ui_require(scope: str) -> UiScopeCheck:
    return UiScopeCheck(scope)


UiReader = Annotated[auth.Principal, Depends(ui_require("read"))]
UiWriter = Annotated[auth.Principal, Depends(ui_require("write"))]
