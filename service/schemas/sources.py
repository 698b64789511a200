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
    created_at: datetime
