"""Cached recommendations answered before the framework.

GET /v1/experiments/{name}/recommendation is the endpoint clients poll, and on an answer-cache
hit nearly all of its cost was FastAPI's: matching the path against every route, solving the
route's dependencies and validating its query parameters (bench/api.py). This middleware answers
such a request itself when the answer is cached and the caller's key is in the key cache with
the `read` scope, with the route's exact response (same status, headers and body).

Everything else goes on to the route untouched: an answer not cached, a key not cached (or
without `read`), auth failures, and any query it does not read plainly (unknown or repeated
parameters, numbers not written as plain decimals). The answer cache holds only answers to
requests the route validated, keyed by the same parsed values (`recommendation_key`), so a hit
here is a request the route would have answered with those bytes.
"""

import re
from collections.abc import Hashable
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Receive, Scope, Send

from service import auth
from service.api.caller import bearer_token
from service.fits.answers import AnswerCache, recommendation_key

_PATH = re.compile(r"/v1/experiments/([^/]+)/recommendation")
_NUMBER = re.compile(r"[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_DEFAULTS = {"law": "chinchilla", "method": "parametric", "max_params": None, "confidence": 0.9}
_NUMBERS = ("flops", "max_params", "confidence")


def _key_of(query: bytes) -> Hashable | None:
    """The answer-cache key of a plainly written query, else None (the route then decides)."""
    values: dict[str, str | float | None] = dict(_DEFAULTS)
    seen = set()
    for name, text in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
        if name in seen or (name not in _DEFAULTS and name != "flops"):
            return None
        seen.add(name)
        if name in _NUMBERS:
            if not _NUMBER.fullmatch(text):
                return None
            values[name] = float(text)
        else:
            values[name] = text
    flops, max_params, confidence = values.get("flops"), values["max_params"], values["confidence"]
    law, method = values["law"], values["method"]
    if not (
        isinstance(flops, float)
        and isinstance(law, str)
        and isinstance(method, str)
        and isinstance(confidence, float)
        and (max_params is None or isinstance(max_params, float))
    ):
        return None
    return recommendation_key(law, method, flops, max_params, confidence)


class CachedAnswerMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = self._cached(scope) if scope["type"] == "http" else None
        if body is None:
            await self.app(scope, receive, send)
            return
        headers = [
            (b"content-length", str(len(body)).encode()),
            (b"content-type", b"application/json"),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    @staticmethod
    def _cached(scope: Scope) -> bytes | None:
        if scope["method"] != "GET" or (found := _PATH.fullmatch(scope["path"])) is None:
            return None
        state = scope["app"].state
        if state.settings.auth:
            token = bearer_token(scope)
            principal = None if token is None else state.key_cache.get(token)
        else:
            principal = auth.ANONYMOUS
        if principal is None or not principal.has("read"):
            return None
        key = _key_of(scope.get("query_string", b""))
        if key is None:
            return None
        answers: AnswerCache = state.answer_cache
        return answers.get(found.group(1), key)
