"""Experiments: a group of runs fitted together."""

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from service.schemas.common import JsonObject, SafeText, StrictModel

ExperimentName = Annotated[
    str,
    Field(
        pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$",
        description="Slug: lowercase letters, digits, '-' and '_'; at most 64 characters.",
        examples=["chinchilla-massivetext"],
    ),
]
ParamConvention = Literal["total", "non_embedding"]
FlopsFormula = Literal["6ND", "reported"]


class ExperimentCreate(StrictModel):
    name: ExperimentName
    description: SafeText = Field(default="", max_length=10_000)
    param_convention: ParamConvention = Field(
        default="total",
        description="How `params` counts: all parameters (Chinchilla) or non-embedding (Kaplan).",
    )
    flops_formula: FlopsFormula = Field(
        default="6ND",
        description="How `flops` is counted: C = 6 * params * tokens, or as reported per run.",
    )
    metadata: JsonObject = Field(default_factory=dict)

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "chinchilla-massivetext",
                    "description": "Hoffmann et al. 2022, Figure 4 runs (Epoch extraction).",
                    "param_convention": "total",
                    "flops_formula": "6ND",
                    "metadata": {"tokenizer": "sentencepiece-32k", "dataset": "MassiveText"},
                }
            ]
        }
    )


class ExperimentPatch(StrictModel):
    description: SafeText | None = Field(default=None, max_length=10_000)
    metadata: JsonObject | None = None

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"description": "Updated description."}]}
    )


class ExperimentOut(BaseModel):
    name: str
    description: str
    param_convention: ParamConvention
    flops_formula: FlopsFormula
    metadata: dict[str, Any]
    corpus_hash: str | None = Field(description="Pinned by the first run that carries one.")
    tokenizer_hash: str | None = Field(description="Pinned by the first run that carries one.")
    run_count: int
    created_at: datetime
    updated_at: datetime
