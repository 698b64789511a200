"""Domain errors. Each class's docstring is its message; `details` says what exactly went wrong.

The HTTP layer turns any `ServiceError` into `{"error": {"code", "message", "details"}}` with the
class's status code (`service.envelope`), so a route never builds an error response by hand.
"""

from typing import Any, ClassVar


class ServiceError(Exception):
    """The request could not be served."""

    status_code: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"

    def __init__(self, message: str | None = None, **details: Any) -> None:
        self.message = message or (self.__doc__ or self.code).strip()
        self.details = details
        super().__init__(self.message)


class NotFoundError(ServiceError):
    """The resource does not exist."""

    status_code = 404
    code = "not_found"


class ConflictError(ServiceError):
    """The request conflicts with data already stored."""

    status_code = 409
    code = "conflict"


class RunKeyConflictError(ConflictError):
    """A run with this run_key already exists with a different body."""

    code = "run_key_conflict"


class ServiceBusyError(ServiceError):
    """Every database connection of this process is in use; retry after a moment."""

    status_code = 429
    code = "busy"


class IdempotencyInProgressError(ConflictError):
    """A request with this Idempotency-Key is still being answered; retry after a moment."""

    code = "idempotency_in_progress"


class ExperimentNotEmptyError(ConflictError):
    """The experiment still has runs; pass force=true to delete them with it."""

    code = "experiment_not_empty"


class InvalidInputError(ServiceError):
    """The request is well-formed but its content is invalid."""

    status_code = 422
    code = "invalid_input"


class IdempotencyKeyReusedError(InvalidInputError):
    """This Idempotency-Key was already used with a different request."""

    code = "idempotency_key_reused"


class FitTimeoutError(InvalidInputError):
    """The fit ran longer than SCALING_FIT_TIMEOUT_SECONDS allows."""

    code = "fit_timeout"


class ProvenanceMismatchError(InvalidInputError):
    """Runs from a different corpus or tokenizer cannot join this experiment."""

    code = "provenance_mismatch"


class PayloadTooLargeError(ServiceError):
    """The request body is larger than this server accepts."""

    status_code = 413
    code = "payload_too_large"


class AuthenticationError(ServiceError):
    """A valid API key is required: send `Authorization: Bearer <key>`."""

    status_code = 401
    code = "unauthenticated"


class PermissionDeniedError(ServiceError):
    """This API key lacks the scope this operation needs."""

    status_code = 403
    code = "forbidden"


class DatabaseUnavailableError(ServiceError):
    """The database is unreachable; retry shortly."""

    status_code = 503
    code = "database_unavailable"


class SchemaNotAtHeadError(RuntimeError):
    """The database schema is not at the latest migration: run `scaling-service migrate`."""


class SourceUnavailableError(ServiceError):
    """The MLflow server did not answer as expected."""

    status_code = 502
    code = "source_unavailable"


class WebhookUrlNotAllowedError(InvalidInputError):
    """The webhook's URL is not on this server's allow-list (SCALING_WEBHOOK_ALLOWED_HOSTS)."""

    code = "webhook_url_not_allowed"


class WebhooksNotConfiguredError(InvalidInputError):
    """Webhooks need SCALING_WEBHOOK_SECRET_KEY on this server (it encrypts their secrets)."""

    code = "webhooks_not_configured"
