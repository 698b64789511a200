"""GET recommendations answered before the framework.

GET /v1/experiments/{name}/recommendation is the endpoint clients poll, and most of its cost
was FastAPI's: matching the path against every route, solving the route's dependencies and
validating its query parameters (bench/api.py). This middleware answers such a request itself
when the caller's key is in the key cache with the `read` scope and the query is written
plainly: from the answer cache, or by computing the answer exactly as the route does
(`recommendation_body`, after validating the query with the route's own types,
`RecommendationQuery`), with the route's exact response (same status, headers and body).

Everything else goes on to the route untouched: a key not cached (or without `read`), auth
failures, any query it does not read plainly (unknown or repeated parameters, numbers not
written as plain decimals) or that the route would refuse, and any answer that fails (an
unknown experiment, no fit yet): the route answers those with its errors. A database that is
down or busy is answered here, with the route's 503 or 429: the route would only wait for it a
second time.
"""

import re
from collections.abc import Hashable
from urllib.parse import parse_qsl

from pydantic import ValidationError
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from service import auth
from service.api.caller import bearer_token
from service.api.errors import database_failure, exception_response
from service.api.recommendation_query import RecommendationQuery
from service.fits.answers import AnswerCache, recommendation_body, recommendation_key

_PATH = re.compile(r"/v1/experiments/([^/]+)/recommendation")
_NUMBER = re.compile(r"[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_DEFAULTS = {"law": "chinchilla", "method": "parametric", "max_params": None, "confidence": 0.9}
_NUMBERS = ("flops", "max_params", "confidence")

Values = dict[str, str | float | None]


def _values_of(query: bytes) -> Values | None:
    """The parameters of a plainly written query, defaults filled in, else None (the route
    then decides)."""
    values: Values = dict(_DEFAULTS)
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
    return values if "flops" in values else None


def _key_of(query: bytes) -> Hashable | None:
    """The answer-cache key of a plainly written query, else None (the route then decides)."""
    values = _values_of(query)
    return None if values is None else _key_from(values)


def _key_from(values: Values) -> Hashable | None:
    flops, max_params, confidence = values["flops"], values["max_params"], values["confidence"]
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
        body = await self._answer(scope) if scope["type"] == "http" else None
        if body is None:
            await self.app(scope, receive, send)
            return
        if isinstance(body, Response):
            await body(scope, receive, send)
            return
        headers = [
            (b"content-length", str(len(body)).encode()),
            (b"content-type", b"application/json"),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    @staticmethod
    async def _answer(scope: Scope) -> bytes | Response | None:
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
        values = _values_of(scope.get("query_string", b""))
        if values is None or (key := _key_from(values)) is None:
            return None
        name = found.group(1)
        answers: AnswerCache = state.answer_cache
        cached = answers.get(name, key)
        if cached is not None:
            return cached
        try:
            asked = RecommendationQuery.model_validate({"name": name, **values})
        except ValidationError:
            return None
        try:
            return await recommendation_body(
                answers,
                state.session_factory,
                state.fit_cache,
                asked.name,
                law=asked.law,
                method=asked.method,
                flops=asked.flops,
                max_params=asked.max_params,
                confidence=asked.confidence,
            )
        except Exception as exc:
            failure = database_failure(exc)
            if failure is None:  # the route answers again, with its own error (404, 422, ...)
                return None
            return exception_response(failure, state.settings.retry_after_seconds)
