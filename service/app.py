"""The FastAPI application: routers, error handlers, middleware and the start-up checks."""

import gc
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.routing import APIRoute
from starlette.types import ASGIApp

from service import __version__, auth
from service.api import errors
from service.api.answer_fastpath import CachedAnswerMiddleware
from service.api.auth_first import AuthBeforeBodyMiddleware
from service.api.docs import install_docs
from service.api.idempotency import IdempotencyMiddleware
from service.api.json_body import openapi_with_bodies
from service.api.limits import BodyLimitMiddleware
from service.api.ratelimit import RateLimitMiddleware, TokenBucketLimiter
from service.api.request_context import RequestContextMiddleware
from service.api.routes import (
    experiments,
    fits,
    health,
    jobs,
    keys,
    metrics,
    recommendations,
    runs,
    sources,
    webhooks,
)
from service.api.security import SecurityHeadersMiddleware
from service.db import (
    create_db_engine,
    create_probe_engine,
    ensure_schema_at_head,
    head_revision,
    make_session_factory,
    session_scope,
)
from service.fits.answers import AnswerCache
from service.fits.cache import FitCache
from service.fits.runner import FitRunner
from service.fits.service import FitPolicy
from service.logging import configure_logging
from service.metrics import mark_process_dead
from service.settings import Settings, get_settings
from service.ui import install as install_ui

DESCRIPTION = """
Fit scaling laws (Chinchilla: L(N, D) = E + A/N^alpha + B/D^beta) to your training runs and
decide how to spend a training budget.

Units everywhere: `params` and `tokens` are counts, `flops` are training FLOPs, `loss` is
nats/token. Each experiment records its parameter convention (total or non-embedding) and FLOP
formula (6ND or reported). Authenticate with `Authorization: Bearer <API key>`.
"""


def operation_id(route: APIRoute) -> str:
    return route.name


class _App(FastAPI):
    """FastAPI with the request context (request id, access log, latency) and the security headers
    as its outermost layers, outside even the catch-all error handler: a 500 carries X-Request-ID
    and the security headers, its log line the request's context, and its latency is counted. Its
    OpenAPI document also shows the models of the bodies routes parse themselves (`JsonBody`)."""

    def openapi(self) -> dict[str, Any]:
        return openapi_with_bodies(self)

    def build_middleware_stack(self) -> ASGIApp:
        settings: Settings = self.state.settings
        return RequestContextMiddleware(
            # Outside the catch-all error handler too, so a 500 carries the security headers.
            SecurityHeadersMiddleware(super().build_middleware_stack()),
            routes=self.router.routes,
            record_metrics=settings.metrics_enabled,
        )


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app. Refuses to start when the database schema is not at the latest migration."""
    settings = settings or get_settings()
    bootstrap = settings.bootstrap_admin_key
    configure_logging(settings.log_level, [bootstrap.get_secret_value()] if bootstrap else [])
    engine = create_db_engine(settings.database_url, settings.db_pool_size)
    session_factory = make_session_factory(engine)
    schema_head = head_revision()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ensure_schema_at_head(engine, schema_head)
        if settings.bootstrap_admin_key is not None:
            with session_scope(session_factory) as session:
                auth.ensure_key(
                    session,
                    "bootstrap admin",
                    ["admin"],
                    settings.bootstrap_admin_key.get_secret_value(),
                )
        if runner is not None:
            runner.start()
        # Everything alive now (modules, schemas, the engine) lives as long as the process:
        # keep it out of the cyclic collector, whose full passes would otherwise walk it every
        # time a large request allocates (a 10,000-run batch spent a third of its time there).
        gc.collect()
        gc.freeze()
        yield
        if runner is not None:
            runner.stop()
        engine.dispose()
        app.state.answer_cache.close()
        app.state.probe_engine.dispose()
        mark_process_dead(os.getpid())  # this worker's live gauges (multiprocess mode only)

    app = _App(
        title="scaling-service",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # served offline by install_docs
        redoc_url=None,
        # operationId = the route function's name (create_experiment, import_runs, ...): stable,
        # and what generated clients name their functions (FastAPI's default appends the path).
        generate_unique_id_function=operation_id,
        openapi_tags=[
            {"name": "experiments", "description": "Groups of runs fitted together."},
            {"name": "runs", "description": "Training-run results: params, tokens, flops, loss."},
            {"name": "fits", "description": "Scaling-law fits with provenance and refits."},
            {"name": "recommendations", "description": "How to spend a training budget."},
            {"name": "jobs", "description": "Planned training runs, the worker's queue."},
            {"name": "keys", "description": "API keys and scopes (admin)."},
            {"name": "sources", "description": "Runs pulled from MLflow tracking servers."},
            {"name": "webhooks", "description": "Signed POSTs when fits or answers change."},
            {"name": "health", "description": "Probes for orchestrators."},
        ],
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.probe_engine = create_probe_engine(settings.database_url)
    app.state.session_factory = session_factory
    app.state.schema_head = schema_head
    app.state.answer_cache = AnswerCache(settings.answer_cache_seconds)
    app.state.fit_policy = FitPolicy.from_settings(settings, app.state.answer_cache.invalidate)
    app.state.fit_cache = FitCache()
    app.state.key_cache = auth.KeyCache(settings.auth_cache_seconds)
    runner = FitRunner(session_factory, app.state.fit_policy) if settings.fit_runner else None

    errors.install(app)
    for router in (
        health.router,
        experiments.router,
        runs.router,
        fits.router,
        recommendations.router,
        jobs.router,
        keys.router,
        sources.router,
        webhooks.router,
    ):
        app.include_router(router)
    if settings.metrics_enabled:
        app.include_router(metrics.router)
    install_ui(app)  # the dashboard at /ui (not in the OpenAPI document)
    install_docs(app)  # Swagger UI at /docs, ReDoc at /redoc, with local assets

    app.add_middleware(CachedAnswerMiddleware)  # innermost: after the rate limit, like the route
    app.add_middleware(
        IdempotencyMiddleware, session_factory=session_factory, max_body=settings.max_body_bytes
    )
    app.add_middleware(BodyLimitMiddleware, max_body=settings.max_body_bytes)
    app.add_middleware(AuthBeforeBodyMiddleware)  # outside both: no body read for a bad key
    if settings.rate_limit_per_second > 0:
        limiter = TokenBucketLimiter(settings.rate_limit_per_second, settings.rate_limit_burst)
        app.add_middleware(RateLimitMiddleware, limiter=limiter)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["*"],
            allow_headers=["*"],
        )
    return app
