"""Errors the client raises: the API's `{"error": {"code", "message", "details"}}` as exceptions."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from service.schemas.fits import FitOut


class ClientError(Exception):
    """Base of everything this client raises on purpose."""


class ApiError(ClientError):
    """The server answered with an error status.

    `code` is the API's stable machine-readable code (e.g. `not_found`, `run_key_conflict`,
    `validation_error`), `details` its structured context (fields, rows, limits)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: Any = None,
        *,
        request_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.request_id = request_id
        self.retry_after = retry_after
        super().__init__(f"{status} {code}: {message}")

    @property
    def row_errors(self) -> list[dict[str, Any]]:
        """Per-row problems of a refused import or batch (`details.errors` or `details`)."""
        details = self.details
        if isinstance(details, dict):
            details = details.get("errors")
        if isinstance(details, list):
            return [d for d in details if isinstance(d, dict)]
        return []


class AuthenticationError(ApiError):
    """401: no API key, or an unknown one."""


class PermissionDeniedError(ApiError):
    """403: the key lacks the scope this operation needs."""


class NotFoundError(ApiError):
    """404: the experiment, run, fit or key does not exist."""


class ConflictError(ApiError):
    """409: conflicts with stored data (name taken, run_key reused with another body, ...)."""


class PayloadTooLargeError(ApiError):
    """413: the request body is larger than the server accepts."""


class ValidationError(ApiError):
    """422: invalid input; `details` names each field (and row, in a batch or file)."""


class ServiceUnavailableError(ApiError):
    """502/503/504: retried automatically; raised when the retries are used up."""


class FitFailedError(ClientError):
    """A fit waited for ended in status `failed`; `fit.error` says why."""

    def __init__(self, fit: FitOut) -> None:
        self.fit = fit
        super().__init__(f"fit {fit.id} failed: {fit.error}")


_BY_STATUS: dict[int, type[ApiError]] = {
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    413: PayloadTooLargeError,
    422: ValidationError,
    502: ServiceUnavailableError,
    503: ServiceUnavailableError,
    504: ServiceUnavailableError,
}


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date); None if absent/bad."""
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def error_from_response(response: httpx.Response) -> ApiError:
    """The exception for an error response, whatever its body."""
    code, message, details = f"http_{response.status_code}", response.reason_phrase, None
    try:
        body = json.loads(response.content)
    except ValueError:
        body = None
        text = response.text.strip()
        if text:
            message = text[:500]
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        error = body["error"]
        code = str(error.get("code", code))
        message = str(error.get("message", message))
        details = error.get("details")
    cls = _BY_STATUS.get(response.status_code, ApiError)
    return cls(
        response.status_code,
        code,
        message,
        details,
        request_id=response.headers.get("x-request-id"),
        retry_after=parse_retry_after(response.headers.get("retry-after")),
    )
