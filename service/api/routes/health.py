"""Liveness and readiness probes."""

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import SQLAlchemyError

from service.db import ensure_schema_at_head
from service.envelope import error_body, error_response
from service.errors import SchemaNotAtHeadError
from service.schemas.common import ErrorResponse

router = APIRouter(tags=["health"])


@router.get(
    "/healthz",
    summary="Liveness: the process is up",
    description="Answers 200 while the process serves HTTP; touches no database.",
)
async def healthz() -> dict[str, str]:  # async: no worker-thread hop for a constant
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Readiness: database reachable and schema at head",
    description="200 when the database answers and its schema is at the latest migration; "
    "503 with Retry-After otherwise.",
    responses={503: {"model": ErrorResponse, "description": "Not ready; `message` says why."}},
)
def readyz(request: Request) -> Response:
    try:
        # Its own connection, not the pool's: a busy pool is not a database that is down.
        ensure_schema_at_head(request.app.state.probe_engine, request.app.state.schema_head)
    except (SQLAlchemyError, SchemaNotAtHeadError) as exc:
        reason = str(exc) if isinstance(exc, SchemaNotAtHeadError) else "database unreachable"
        return error_response(
            503,
            error_body("not_ready", reason),
            {"Retry-After": str(request.app.state.settings.retry_after_seconds)},
        )
    return JSONResponse({"status": "ready"})
