"""Exception handlers: every error leaves as `{"error": {"code", "message", "details"}}`, built by
`service.envelope`."""

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException
from starlette.responses import Response

from service.envelope import error_body, error_response, response_of
from service.errors import (
    DatabaseUnavailableError,
    IdempotencyInProgressError,
    ServiceBusyError,
    ServiceError,
)
from service.scaling import ScalingError

log = structlog.get_logger(__name__)

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def _field(loc: tuple[Any, ...]) -> str:
    parts = [p for p in loc if p not in ("body", "query", "path", "header")]
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or ".".join(str(p) for p in loc)


def _row(loc: tuple[Any, ...]) -> int | None:
    if len(loc) >= 3 and loc[0] == "body" and loc[1] == "runs" and isinstance(loc[2], int):
        return loc[2]
    return None


async def _validation(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    details = []
    for error in exc.errors():
        loc = tuple(error.get("loc", ()))
        item: dict[str, Any] = {"field": _field(loc), "message": error.get("msg", "")}
        if (row := _row(loc)) is not None:
            item["row"] = row
        details.append(item)
    first = details[0] if details else {"field": "", "message": "invalid request"}
    message = f"{first['field']}: {first['message']}"
    if len(details) > 1:
        message += f" (and {len(details) - 1} more)"
    return error_response(422, error_body("validation_error", message, details))


def exception_response(exc: ServiceError | ScalingError, retry_after_seconds: int) -> Response:
    """The answer to a domain error, with `Retry-After` where retrying later can succeed."""
    headers = None
    if isinstance(exc, DatabaseUnavailableError):
        headers = {"Retry-After": str(retry_after_seconds)}
    elif isinstance(exc, ServiceBusyError | IdempotencyInProgressError):
        headers = {"Retry-After": "1"}
    return response_of(exc, headers)


async def _domain(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ServiceError | ScalingError)
    return exception_response(exc, request.app.state.settings.retry_after_seconds)


async def _http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    cause = exc.__cause__
    if isinstance(cause, ServiceError):  # the body limit cut off a body FastAPI was reading
        return await _domain(request, cause)
    if exc.status_code == 400 and cause is not None:
        # FastAPI raises a 400 from its parser's error for a body it cannot decode (not UTF-8):
        # invalid input, like bad JSON.
        body = error_body("validation_error", "body: not valid JSON (UTF-8)", [{"field": "body"}])
        return error_response(422, body)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    headers = dict(exc.headers) if exc.headers else None
    return error_response(exc.status_code, error_body(code, str(exc.detail)), headers)


def _is_connection_error(exc: Exception) -> bool:
    if isinstance(exc, OperationalError):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


def database_failure(exc: Exception) -> ServiceError | None:
    """What a failed database call means for the caller, logged: every pooled connection busy
    (429) or the database unreachable (503); None for any other error."""
    if isinstance(exc, PoolTimeoutError):
        # The database answers; this process has every connection busy with other requests.
        log.warning("database_pool_busy")
        return ServiceBusyError()
    if _is_connection_error(exc):
        log.warning("database_unavailable", error=type(exc).__name__)
        return DatabaseUnavailableError()
    return None


async def _database(request: Request, exc: Exception) -> Response:
    failure = database_failure(exc)
    if failure is None:
        return await _unexpected(request, exc)
    return await _domain(request, failure)


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled_error", path=request.url.path)
    return error_response(500, error_body("internal_error", "internal server error"))


def install(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(ServiceError, _domain)
    app.add_exception_handler(ScalingError, _domain)
    app.add_exception_handler(HTTPException, _http)
    app.add_exception_handler(DBAPIError, _database)
    app.add_exception_handler(PoolTimeoutError, _database)
    app.add_exception_handler(Exception, _unexpected)
