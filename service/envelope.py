"""The error envelope: every error body the service produces is built here.

An HTTP error answers `{"error": {"code", "message", "details"}}` (`ErrorResponse`); a failed
fit's stored `error` and a compared source's `error` are the inner `{"code", "message",
"details"}` (`ErrorBody`). `details` is null when an error has nothing to add to its code and
message, never `{}` or `[]`; otherwise an object (a list of per-field problems for
`validation_error`).
"""

from collections.abc import Mapping, Sequence
from typing import Any

from starlette.responses import Response

from service.errors import ServiceError
from service.scaling import ScalingError
from service.schemas.common import ErrorBody, ErrorResponse

# The core's errors are about the data or the question asked: invalid input.
SCALING_ERROR_STATUS = 422


def error_body(
    code: str,
    message: str,
    details: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
) -> ErrorBody:
    return ErrorBody(code=code, message=message, details=details or None)


def body_of(exc: ServiceError | ScalingError) -> ErrorBody:
    return error_body(exc.code, exc.message, exc.details)


def status_of(exc: ServiceError | ScalingError) -> int:
    return exc.status_code if isinstance(exc, ServiceError) else SCALING_ERROR_STATUS


def error_json(body: ErrorBody) -> dict[str, Any]:
    """The inner body as JSON values, for storing or embedding in a larger answer."""
    return body.model_dump(mode="json")


def error_response(
    status: int, body: ErrorBody, headers: Mapping[str, str] | None = None
) -> Response:
    """The HTTP answer; a starlette `Response` is also an ASGI app, so middleware sends it too."""
    content = ErrorResponse(error=body).model_dump_json()
    return Response(content, status_code=status, headers=headers, media_type="application/json")


def response_of(
    exc: ServiceError | ScalingError, headers: Mapping[str, str] | None = None
) -> Response:
    return error_response(status_of(exc), body_of(exc), headers)
