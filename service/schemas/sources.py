"""Sources: where an experiment's runs are pulled from, and how their fields map to runs."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from service.schemas.common import SafeText

FieldKind = Literal["param", "metric", "tag"]


class FieldFrom(BaseModel):
    """Where one run field comes from in an MLflow run."""

    model_config = ConfigDict(extra="forbid")

    kind: FieldKind = Field(description="An MLflow param, metric or tag.")
    key: SafeText = Field(min_length=1, max_length=250, description="Its name in MLflow.")
    reduce: Literal["last", "min"] = Field(
        default="last",
        description="Metrics only: the last logged value, or the minimum over the run's history "
        "(its step is recorded in the run's metadata).",
    )
    scale: float = Field(
        default=1.0,
        gt=0,
        allow_inf_nan=False,
        description="Multiplies the value, e.g. 1e6 for a param logged in millions.",
    )


class MlflowMapping(BaseModel):
    """How an MLflow run becomes a run: params and tokens are counts, flops FLOPs (6ND when
    left out), loss nats/token."""

    model_config = ConfigDict(extra="forbid")

    params: FieldFrom
    tokens: FieldFrom
    loss: FieldFrom
    flops: FieldFrom | None = None
    unique_tokens: FieldFrom | None = None
    metadata_params: list[SafeText] = Field(
        default_factory=list, max_length=50, description="MLflow params copied into metadata."
    )
    metadata_tags: list[SafeText] = Field(
        default_factory=list, max_length=50, description="MLflow tags copied into metadata."
    )


MAPPING_EXAMPLE: dict[str, JsonValue] = {
    "params": {"kind": "param", "key": "n_params"},
    "tokens": {"kind": "param", "key": "n_tokens"},
    "loss": {"kind": "metric", "key": "val_loss", "reduce": "min"},
}


class MlflowSourceIn(BaseModel):
    """A source reading finished runs of MLflow experiments on a tracking server the operator
    configured (SCALING_MLFLOW_SERVERS): callers name the server, never give an address."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "server": "main",
                    "experiment_ids": ["1"],
                    "filter": "params.sweep = 'chinchilla'",
                    "mapping": MAPPING_EXAMPLE,
                }
            ]
        },
    )

    server: SafeText = Field(min_length=1, max_length=64, description="A configured server.")
    experiment_ids: list[SafeText] = Field(
        min_length=1, max_length=20, description="MLflow experiment ids to read."
    )
    filter: SafeText = Field(
        default="",
        max_length=1000,
        description="An MLflow search filter, ANDed with status = FINISHED.",
    )
    mapping: MlflowMapping
    schedule_seconds: float | None = Field(
        default=None,
        ge=60,
        allow_inf_nan=False,
        description="Sync this often from the worker; null: only on demand.",
    )
    log_results: bool = Field(
        default=False,
        description="Log each succeeded fit of the experiment back to MLflow as a run (params, "
        "intervals, goodness of fit, the recommendation at the target budget, plots): done by "
        "the worker, once per fit.",
    )
    results_experiment_id: SafeText | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="The MLflow experiment results are logged into; null: the first of "
        "experiment_ids.",
    )
    results_target_flops: float | None = Field(
        default=None,
        ge=1e6,
        le=1e40,
        allow_inf_nan=False,
        description="Training FLOPs (6ND) whose recommendation is logged with each fit; null: "
        "the autopilot's target_flops when it is configured, else no recommendation.",
    )


CONFIG_FIELDS = frozenset(
    {"experiment_ids", "filter", "mapping", "results_experiment_id", "results_target_flops"}
)


class SourcePatch(BaseModel):
    """The source settings that can change after creation; fields left out stay as they are."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"log_results": True, "results_target_flops": 1e24}]},
    )

    log_results: bool | None = None
    results_experiment_id: SafeText | None = Field(default=None, min_length=1, max_length=64)
    results_target_flops: float | None = Field(default=None, ge=1e6, le=1e40, allow_inf_nan=False)
    schedule_seconds: float | None = Field(default=None, ge=60, allow_inf_nan=False)


class Unmapped(BaseModel):
    """An MLflow run that could not become a run, and why; nothing of it was stored."""

    mlflow_run_id: str
    reason: str


class SyncResult(BaseModel):
    """What one sync did. Runs already stored with the same values are unchanged."""

    created: int
    unchanged: int
    unmapped: list[Unmapped]
    run_ids: list[int] = Field(description="Ids of the runs this sync created.")
    watermark_ms: int | None = Field(
        description="The largest MLflow end_time (ms) read so far: the next sync starts there."
    )
    synced_at: datetime


class MlflowSourceOut(BaseModel):
    id: int
    experiment: str
    kind: Literal["mlflow"]
    server: str
    experiment_ids: list[str]
    filter: str
    mapping: MlflowMapping
    schedule_seconds: float | None
    watermark_ms: int | None
    last_sync_at: datetime | None
    last_result: SyncResult | None
    last_error: str | None
    log_results: bool
    results_experiment_id: str | None
    results_target_flops: float | None
    exported_fits: int = Field(description="How many fits this source has logged to MLflow.")
    last_export_at: datetime | None = Field(description="When it last logged a fit.")
    last_export_error: str | None = Field(
        description="Why the last attempt to log a fit failed (retried by the worker); null "
        "once one succeeds."
    )
    created_at: datetime
