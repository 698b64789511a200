"""Shapes shared by every resource: errors, warnings, pages, positive finite numbers."""

from typing import Annotated, Any, Generic, TypeVar

import orjson
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo

Item = TypeVar("Item")

# Ids are 64-bit signed integers in every backend: a larger one names nothing (and overflows
# the database driver), so it is refused as invalid input.
MAX_ID = 2**63 - 1

PositiveFinite = Annotated[float, Field(gt=0, allow_inf_nan=False)]


def _check_text(value: str) -> str:
    """Text every backend stores as sent: PostgreSQL refuses NUL, UTF-8 refuses lone surrogates."""
    if "\x00" in value:
        raise ValueError("text must not contain NUL (\\u0000) characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("text must be valid Unicode (no lone surrogates)") from None
    return value


def _check_json(value: Any) -> None:
    if isinstance(value, str):
        _check_text(value)
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, int):
        if not -(2**63) <= value < 2**63:
            raise ValueError("integers must fit in 64 bits")
    elif isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError("numbers must be finite (no NaN or Infinity)")
    elif isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError("object keys must be text")
            _check_text(key)
            _check_json(item)
    elif isinstance(value, list):
        for item in value:
            _check_json(item)


def _check_json_object(value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
    # Fast path (a 10,000-run batch carries 20,000 of these): orjson refuses what _check_json
    # refuses except NUL and NaN/infinity, which it writes as "\u0000" and "null"; only an
    # encoding error or either marker sends the object through the exact, slower walk.
    if not value:
        return value
    try:
        dumped = orjson.dumps(value)
    except orjson.JSONEncodeError:
        _check_json(value)  # names what JSON cannot hold, if it is a number or text
        raise ValueError(
            "must hold JSON only: objects, arrays, text, numbers, true, false and null, "
            "nested at most 254 deep"
        ) from None
    if b"null" in dumped or b"\\u0000" in dumped:
        _check_json(value)
    if info.mode == "python":
        # Objects from Python callers (file imports, the worker) may hold tuples, dates or other
        # values orjson writes; keep what is stored and hashed, their JSON, as JSON reads it.
        return dict(orjson.loads(dumped))
    return value


# Strings and free-form JSON from clients: refused (422) unless they read back exactly as sent.
SafeText = Annotated[str, AfterValidator(_check_text)]
JsonObject = Annotated[dict[str, Any], AfterValidator(_check_json_object)]


class StrictModel(BaseModel):
    """A request body: unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid")


class ErrorBody(BaseModel):
    code: str = Field(description="Stable machine-readable error code.")
    message: str = Field(description="What went wrong, for a person.")
    details: dict[str, Any] | list[dict[str, Any]] | None = Field(
        default=None,
        description="Structured context (fields, rows, limits, known names); null when there is "
        "nothing to add. A list of per-field problems for `validation_error`, else an object.",
    )


class ErrorResponse(BaseModel):
    """Every 4xx and 5xx response has this shape."""

    error: ErrorBody

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "error": {
                    "code": "validation_error",
                    "message": "runs[3].loss: Input should be greater than 0",
                    "details": [
                        {"field": "runs[3].loss", "row": 3, "message": "Input should be > 0"}
                    ],
                }
            }
        }
    )


class Warning(BaseModel):
    code: str
    message: str
    row: int | None = Field(default=None, description="Row index in the batch, when per row.")


class Page(BaseModel, Generic[Item]):
    items: list[Item]
    next_page_token: str | None = Field(
        default=None, description="Pass as `page_token` for the next page; null on the last."
    )


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse, "description": description}
    for code, description in {
        401: "Missing or unknown API key.",
        403: "The key lacks the required scope.",
        422: "Invalid input; `details` names each field (and row, in a batch).",
        429: "Rate limited (when SCALING_RATE_LIMIT_PER_SECOND is set); retry after "
        "`Retry-After` seconds.",
        503: "Database unreachable; retry after `Retry-After` seconds.",
    }.items()
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The documented error responses for an operation: the common ones plus `codes`."""
    extra = {
        404: "Not found.",
        409: "Conflicts with stored data.",
        413: "Request too large.",
        502: "An upstream server (an MLflow source) did not answer as expected.",
    }
    documented = dict(ERROR_RESPONSES)
    for code in codes:
        documented[code] = {"model": ErrorResponse, "description": extra[code]}
    return documented
