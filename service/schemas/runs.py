"""Runs: one training run's final result, in params (count), tokens (count), flops, loss."""

import math
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, Strict, model_validator

from service.schemas.common import JsonObject, PositiveFinite, SafeText, StrictModel, Warning

MAX_BATCH_RUNS = 10_000
# Numbers on the wire are JSON numbers: "1e8" strings and true are refused, not coerced.
WireFloat = Annotated[PositiveFinite, Strict()]
WireInt = Annotated[int, Strict()]

RUN_EXAMPLE: dict[str, Any] = {
    "run_key": "sweep-3e19-n400m",
    "params": 4.0e8,
    "tokens": 1.25e10,
    "flops": 3.0e19,
    "loss": 2.71,
    "seed": 0,
    "hyperparameters": {"lr": 3e-4, "batch_tokens": 524288},
    "metadata": {"corpus_hash": "sha256:...", "tokenizer_hash": "sha256:..."},
    "source": "api",
}


class RunSelection(StrictModel):
    """The runs a fit reads (its `filters`): inclusive ranges; unset sides are open."""

    flops_min: PositiveFinite | None = None
    flops_max: PositiveFinite | None = None
    params_min: PositiveFinite | None = None
    params_max: PositiveFinite | None = None
    tokens_min: PositiveFinite | None = None
    tokens_max: PositiveFinite | None = None
    source: SafeText | None = Field(default=None, max_length=64)


class RunFilter(RunSelection):
    """A selection of runs and whether excluded runs are in it: the query of
    GET /v1/experiments/{name}/runs (the client's `RunFilters`), and what a fit reads."""

    # A query model: the route's other query parameters (limit, page_token) pass beside it.
    model_config = ConfigDict(extra="ignore")

    excluded: bool | None = Field(default=None, description="Only excluded / included runs.")

    def given(self) -> dict[str, Any]:
        """The fields set to something, as query parameters."""
        return self.model_dump(exclude_none=True)


class RunIn(StrictModel):
    run_key: SafeText | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="The client's id for the run; makes the POST idempotent.",
    )
    params: WireFloat = Field(description="Parameter count, in the experiment's convention.")
    tokens: WireFloat = Field(description="Training tokens seen.")
    loss: WireFloat = Field(description="Final loss, nats/token.")
    flops: WireFloat | None = Field(
        default=None, description="Training FLOPs; when absent, derived as 6 * params * tokens."
    )
    unique_tokens: WireFloat | None = Field(
        default=None, description="Unique tokens in the training data (for repeated data)."
    )
    seed: WireInt | None = Field(default=None, ge=-(2**63), lt=2**63)
    hyperparameters: JsonObject = Field(default_factory=dict)
    metadata: JsonObject = Field(
        default_factory=dict,
        description="Free-form; `corpus_hash` and `tokenizer_hash` must match the experiment's.",
    )
    source: SafeText = Field(default="api", min_length=1, max_length=64)

    @model_validator(mode="after")
    def _derivable_flops(self) -> "RunIn":
        # Tiny params * tokens underflowed 6ND to 0 (a CHECK violation: 500 on PostgreSQL, the
        # row silently dropped on SQLite); huge ones overflowed it to infinity.
        if self.flops is None and not 0 < 6.0 * self.params * self.tokens < math.inf:
            raise ValueError(
                "flops derived as 6 * params * tokens is not a positive finite number; "
                "send flops explicitly"
            )
        return self


class RunBatch(StrictModel):
    runs: list[RunIn] = Field(min_length=1, max_length=MAX_BATCH_RUNS)

    model_config = ConfigDict(json_schema_extra={"examples": [{"runs": [RUN_EXAMPLE]}]})


class RunOut(BaseModel):
    id: int
    experiment: str
    run_key: str | None
    params: float
    tokens: float
    flops: float
    flops_derived: bool = Field(description="True when flops was computed as 6 * params * tokens.")
    loss: float
    unique_tokens: float | None
    seed: int | None
    hyperparameters: dict[str, Any]
    metadata: dict[str, Any]
    source: str
    excluded: bool
    excluded_reason: str | None
    created_at: datetime
    updated_at: datetime


class RunStatus(BaseModel):
    id: int
    run_key: str | None
    status: Literal["created", "existing"]


class RunBatchResult(BaseModel):
    created: int
    existing: int
    runs: list[RunStatus] = Field(description="One entry per submitted run, in order.")
    warnings: list[Warning] = Field(default_factory=list)


class ImportResult(RunBatchResult):
    rows: int = Field(description="Data rows read from the file.")
    format: Literal["csv", "jsonl"]


class RunPatch(StrictModel):
    excluded: bool = Field(description="Exclude the run from fits (it stays stored).")
    reason: SafeText | None = Field(
        default=None, min_length=1, max_length=2000, description="Required when excluding."
    )

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"excluded": True, "reason": "diverged at step 9000"}]}
    )
