"""Shapes shared by every resource: errors, warnings, pages, positive finite numbers."""

from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

Item = TypeVar("Item")

# Ids are 64-bit signed integers in every backend: a larger one names nothing (and overflows
# the database driver), so it is refused as invalid input.
MAX_ID = 2**63 - 1

PositiveFinite = Annotated[float, Field(gt=0, allow_inf_nan=False)]


class StrictModel(BaseModel):
    """A request body: unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid")


class ErrorBody(BaseModel):
    code: str = Field(description="Stable machine-readable error code.")
    message: str = Field(description="What went wrong, for a person.")
    details: Any = Field(default=None, description="Structured context: fields, rows, limits.")


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
        503: "Database unreachable; retry after `Retry-After` seconds.",
    }.items()
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The documented error responses for an operation: the common ones plus `codes`."""
    extra = {
        404: "Not found.",
        409: "Conflicts with stored data.",
        413: "Request too large.",
    }
    documented = dict(ERROR_RESPONSES)
    for code in codes:
        documented[code] = {"model": ErrorResponse, "description": extra[code]}
    return documented
