"""Request ids, per-request log context, one access-log line and the latency metrics.

The middleware matches the request against the app's routes itself (before the router does), so
the route template (`/v1/experiments/{name}/runs`) and the experiment name / job id are bound in
structlog's contextvars for every log line the request produces, and the latency histogram is
labelled by template, never by raw path.
"""

import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

import structlog
from starlette.datastructures import MutableHeaders
from starlette.routing import BaseRoute, compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service import metrics

REQUEST_ID_HEADER = "x-request-id"
_SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:+=-]{0,127}")
_PATH_PARAMS_LOGGED = {"name": "experiment", "job_id": "job_id"}

access_log = structlog.get_logger("service.access")


def request_id_from(scope: Scope) -> str:
    """The caller's X-Request-ID when it is short and plain, else a new random id."""
    for key, value in scope["headers"]:
        if key == b"x-request-id":
            text: str = value.decode("latin-1")
            if _SAFE_REQUEST_ID.fullmatch(text):
                return text
            break
    return uuid.uuid4().hex


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

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        request_id = request_id_from(scope)
        method: str = scope["method"]
        route, params = self.routes.match(method, scope["path"])
        context: dict[str, object] = {
            "request_id": request_id,
            "method": method,
            "path": scope["path"],
            "route": route,
        }
        for param, key in _PATH_PARAMS_LOGGED.items():
            if param in params:
                context[key] = params[param]
        scope.setdefault("state", {})["request_id"] = request_id
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        with structlog.contextvars.bound_contextvars(**context):
            if self.record_metrics:
                metrics.request_started(method)
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                seconds = time.perf_counter() - start
                if self.record_metrics:
                    metrics.request_finished(method)
                    metrics.observe_request(route, method, status, seconds)
                log = access_log.error if status >= 500 else access_log.info
                log("request", status=status, duration_ms=round(seconds * 1000, 3))
