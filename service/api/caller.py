"""Who is calling, from the raw ASGI scope (for middleware that runs before the routes)."""

from typing import Any

from anyio import to_thread
from starlette.types import Scope

from service import auth
from service.db import session_scope


def bearer_token(scope: Scope) -> str | None:
    """The token of an `Authorization: Bearer <token>` header (the scheme in any case)."""
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            return token.strip() if scheme.lower() == "bearer" and token.strip() else None
    return None


def client_address(scope: Scope) -> str:
    client = scope.get("client")
    return client[0] if client else "unknown"


async def principal_of(scope: Scope) -> auth.Principal | None:
    """The caller's principal (ANONYMOUS with auth off), through the app's key cache; None for
    a missing, unknown or revoked key. Verifying here fills the cache the routes read."""
    state = scope["app"].state
    if not state.settings.auth:
        return auth.ANONYMOUS
    token = bearer_token(scope)
    return None if token is None else await verified(state, token)


async def verified(state: Any, token: str) -> auth.Principal | None:
    """The principal of an API key through the app's key cache (filled on a miss); None for an
    unknown or revoked key."""
    cache: auth.KeyCache = state.key_cache
    principal = cache.get(token)
    if principal is None:
        principal = await to_thread.run_sync(_verify, state.session_factory, token)
        if principal is not None:
            cache.put(token, principal)
    return principal


def _verify(session_factory: Any, token: str) -> auth.Principal | None:
    with session_scope(session_factory) as session:
        return auth.verify(session, token)
