"""Runs: one training run's result, in params (count), tokens (count), flops, loss (nats/token),
with how that loss was obtained and, optionally, the run's loss curve."""

import math
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, Strict, model_validator

from service.schemas.common import JsonObject, PositiveFinite, SafeText, StrictModel, Warning

MAX_BATCH_RUNS = 10_000
# A curve of 10,000 points is 160 kB stored; a batch's curves together at most 16 MB.
MAX_CURVE_POINTS = 10_000
MAX_BATCH_CURVE_POINTS = 1_000_000
# Numbers on the wire are JSON numbers: "1e8" strings and true are refused, not coerced.
WireFloat = Annotated[PositiveFinite, Strict()]
WireInt = Annotated[int, Strict()]

LossProvenance = Literal["end_of_schedule", "after_cooldown", "mid_schedule"]
# The losses a fit uses unless told otherwise: each is the loss at the end of a schedule that
# was planned to end there (Hoffmann et al. 2022; Hägele et al. 2024 for cooldowns).
VALID_PROVENANCES: tuple[LossProvenance, ...] = ("end_of_schedule", "after_cooldown")
PROVENANCE_DESCRIPTION = (
    "How `loss` was obtained. end_of_schedule (the default, and what every run stored before "
    "this field existed is): the final loss of a schedule that decays to its end (cosine or "
    "linear) matched to this token count. after_cooldown: the loss after a cooldown of "
    "`cooldown_fraction` of the steps from a constant-LR (or WSD) trunk. mid_schedule: a "
    "checkpoint of a longer schedule; not a valid scaling-law point, so fits leave it out "
    "unless `include_mid_schedule` is set."
)

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
    loss_provenance: LossProvenance | None = Field(
        default=None, description="Only runs whose loss was obtained this way."
    )
    trunk_key: SafeText | None = Field(
        default=None, max_length=200, description="Only the runs of this training trunk."
    )

    def given(self) -> dict[str, Any]:
        """The fields set to something, as query parameters."""
        return self.model_dump(exclude_none=True)


class Curve(StrictModel):
    """A loss curve as a platform records it: tokens seen and loss at each point, two arrays of
    one length. Tokens strictly increase; every value is a finite number > 0."""

    tokens: list[WireFloat] = Field(
        min_length=1, max_length=MAX_CURVE_POINTS, description="Tokens seen at each point."
    )
    loss: list[WireFloat] = Field(
        min_length=1, max_length=MAX_CURVE_POINTS, description="Loss (nats/token) at each point."
    )

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"tokens": [1e9, 2e9, 4e9], "loss": [3.4, 3.1, 2.9]}]}
    )

    @model_validator(mode="after")
    def _aligned_and_increasing(self) -> "Curve":
        if len(self.tokens) != len(self.loss):
            raise ValueError(
                f"curve.tokens has {len(self.tokens)} values and curve.loss {len(self.loss)}; "
                "they must pair up"
            )
        for index in range(1, len(self.tokens)):
            if not self.tokens[index] > self.tokens[index - 1]:
                raise ValueError(
                    f"curve.tokens must strictly increase: point {index} "
                    f"({self.tokens[index]:g}) follows {self.tokens[index - 1]:g}"
                )
        return self


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
    loss_provenance: LossProvenance = Field(
        default="end_of_schedule", description=PROVENANCE_DESCRIPTION
    )
    cooldown_fraction: WireFloat | None = Field(
        default=None,
        le=1,
        description="Share of the run's steps spent in the cooldown, in (0, 1] (e.g. 0.2); "
        "required with after_cooldown, refused otherwise.",
    )
    trunk_key: SafeText | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="Runs branched from one training trunk (cooldowns at several token counts) "
        "share a trunk_key: their losses are correlated, and bootstraps resample whole trunks.",
    )
    curve: Curve | None = Field(
        default=None,
        description="The run's loss curve, stored with it (GET /v1/runs/{id}?include=curve). Its "
        "points are checkpoints of this run's schedule (mid_schedule), never fit points by "
        "themselves; its tokens may not pass the run's `tokens`.",
    )

    @model_validator(mode="after")
    def _cooldown_and_curve(self) -> "RunIn":
        if self.loss_provenance == "after_cooldown" and self.cooldown_fraction is None:
            raise ValueError("loss_provenance after_cooldown needs cooldown_fraction")
        if self.loss_provenance != "after_cooldown" and self.cooldown_fraction is not None:
            raise ValueError(
                f"cooldown_fraction is only for after_cooldown runs, not {self.loss_provenance}"
            )
        if self.curve is not None and self.curve.tokens[-1] > self.tokens * (1 + 1e-9):
            raise ValueError(
                f"the curve reaches {self.curve.tokens[-1]:g} tokens, past the run's "
                f"{self.tokens:g}"
            )
        return self

    def identity(self) -> dict[str, Any]:
        """The fields that identify what the client sent (body hashes, derived run keys), as
        `model_dump(mode="json")` gives them.

        The provenance fields are left out where they hold their defaults, so a body without them
        hashes as it did before they existed: clients re-posting old runs get `existing`.
        """
        # The validated values are already JSON's (floats, ints, text, JSON objects: see
        # JsonObject) except the curve, a model. pydantic keeps exactly the fields' values in
        # __dict__ (extras and private attributes live elsewhere); copying it is ~30x cheaper
        # than dumping the model, and dict(self) iterates it in Python.
        fields = self.__dict__.copy()
        if self.curve is not None:
            fields["curve"] = self.curve.model_dump(mode="json")
        for name, default in _IDENTITY_DEFAULTS.items():
            if fields[name] == default:
                del fields[name]
        return fields

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


_IDENTITY_DEFAULTS: dict[str, Any] = {
    "loss_provenance": "end_of_schedule",
    "cooldown_fraction": None,
    "trunk_key": None,
    "curve": None,
}


def check_curve_total(runs: list[RunIn]) -> None:
    total = sum(len(run.curve.tokens) for run in runs if run.curve is not None)
    if total > MAX_BATCH_CURVE_POINTS:
        raise ValueError(
            f"the batch's curves hold {total} points together; at most "
            f"{MAX_BATCH_CURVE_POINTS} per batch (send the runs in several batches)"
        )


class RunBatch(StrictModel):
    runs: list[RunIn] = Field(min_length=1, max_length=MAX_BATCH_RUNS)

    model_config = ConfigDict(json_schema_extra={"examples": [{"runs": [RUN_EXAMPLE]}]})

    @model_validator(mode="after")
    def _curve_total(self) -> "RunBatch":
        check_curve_total(self.runs)
        return self


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
    loss_provenance: LossProvenance = Field(description=PROVENANCE_DESCRIPTION)
    cooldown_fraction: float | None
    trunk_key: str | None
    curve_points: int = Field(description="Points in the stored loss curve; 0: none.")
    curve: Curve | None = Field(
        default=None, description="The loss curve, with `?include=curve` (GET one run)."
    )
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
