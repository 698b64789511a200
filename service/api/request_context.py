"""Request ids, per-request log context, one access-log line and the latency metrics.

The middleware matches the request against the app's routes itself (before the router does), so
the route template (`/v1/experiments/{name}/runs`) and the experiment name / job id are bound in
structlog's contextvars for every log line the request produces, and the latency histogram is
labelled by template, never by raw path.

It runs on every request, so it does only what each needs (see bench/api.py): the route match is
memoised per (method, path), the metric children are looked up once per label set, and the
access line is only built when the `service.access` logger would write it.
"""

import functools
import logging
import os
import re
import time
from collections.abc import Iterator
from typing import Any

import structlog
from starlette.routing import BaseRoute, compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service import metrics

REQUEST_ID_HEADER = "x-request-id"
_REQUEST_ID_HEADER = REQUEST_ID_HEADER.encode()
_SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:+=-]{0,127}")
_PATH_PARAMS_LOGGED = {"name": "experiment", "job_id": "job_id"}
# Distinct (method, path) pairs whose route match is remembered (paths hold experiment names).
_MATCHES_REMEMBERED = 4096

access_log = structlog.get_logger("service.access")
_access_level = logging.getLogger("service.access")


def request_id_from(scope: Scope) -> str:
    """The caller's X-Request-ID when it is short and plain, else a new random id (32 hex)."""
    for key, value in scope["headers"]:
        if key == _REQUEST_ID_HEADER:
            text: str = value.decode("latin-1")
            if _SAFE_REQUEST_ID.fullmatch(text):
                return text
            break
    return os.urandom(16).hex()


class RouteTable:
    """The app's routes flattened to (template, regex, methods), matched like the router does.

    FastAPI wraps included routers, so the leaf routes are read from each wrapper's
    `original_router` with its include prefix. Built on first use: routes may be added after the
    middleware."""

    def __init__(self, routes: list[BaseRoute]) -> None:
        self._routes = routes
        self._table: list[tuple[str, re.Pattern[str], dict[str, Any], set[str] | None]] | None
        self._table = None

    def _flatten(self, routes: list[BaseRoute], prefix: str) -> Iterator[tuple[str, BaseRoute]]:
        for route in routes:
            inner = getattr(route, "original_router", None)
            if inner is not None:
                context = getattr(route, "include_context", None)
                yield from self._flatten(inner.routes, prefix + getattr(context, "prefix", ""))
            elif isinstance(path := getattr(route, "path", None), str):
                yield prefix + path, route

    def _build(self) -> list[tuple[str, re.Pattern[str], dict[str, Any], set[str] | None]]:
        table = []
        for template, route in self._flatten(self._routes, ""):
            regex, path_format, convertors = compile_path(template)
            methods: set[str] | None = getattr(route, "methods", None)
            table.append((path_format, regex, convertors, methods))
        return table

    def match(self, method: str, path: str) -> tuple[str, dict[str, Any]]:
        """The template of the route that serves `method path`, and its path parameters."""
        if self._table is None:
            self._table = self._build()
        partial: tuple[str, dict[str, Any]] | None = None
        for template, regex, convertors, methods in self._table:
            if (found := regex.match(path)) is None:
                continue
            params = {k: convertors[k].convert(v) for k, v in found.groupdict().items()}
            if methods is None or method in methods:
                return template, params
            partial = partial or (template, params)
        return partial or (metrics.UNMATCHED_ROUTE, {})


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, routes: list[BaseRoute], record_metrics: bool = True) -> None:
        self.app = app
        self.routes = RouteTable(routes)
        self.record_metrics = record_metrics
        self._match = functools.lru_cache(maxsize=_MATCHES_REMEMBERED)(self._context_of)

    def _context_of(self, method: str, path: str) -> tuple[str, tuple[tuple[str, object], ...]]:
        """The route template and the path parameters that go into the log context."""
        route, params = self.routes.match(method, path)
        logged = tuple(
            (key, params[param]) for param, key in _PATH_PARAMS_LOGGED.items() if param in params
        )
        return route, logged

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        request_id = request_id_from(scope)
        method: str = scope["method"]
        path: str = scope["path"]
        route, logged = self._match(method, path)
        scope.setdefault("state", {})["request_id"] = request_id
        status = 500
        id_header = (_REQUEST_ID_HEADER, request_id.encode("latin-1"))

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [
                    h for h in message.get("headers", ()) if h[0].lower() != _REQUEST_ID_HEADER
                ]
                headers.append(id_header)
                message["headers"] = headers
            await send(message)

        tokens = structlog.contextvars.bind_contextvars(
            request_id=request_id, method=method, path=path, route=route, **dict(logged)
        )
        try:
            if self.record_metrics:
                metrics.request_started(method)
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                seconds = time.perf_counter() - start
                if self.record_metrics:
                    metrics.request_finished(method)
                    metrics.observe_request(route, method, status, seconds)
                if status >= 500:
                    access_log.error("request", status=status, duration_ms=round(seconds * 1000, 3))
                elif _access_level.isEnabledFor(logging.INFO):
                    access_log.info("request", status=status, duration_ms=round(seconds * 1000, 3))
        finally:
            structlog.contextvars.reset_contextvars(**tokens)
