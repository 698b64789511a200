"""Recommendations: how to spend a budget, with intervals and the law behind the answer."""

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from service.schemas.common import MAX_ID, ErrorBody, PositiveFinite, SafeText, StrictModel
from service.schemas.fits import LawName, MethodName


def _is_none(value: object) -> bool:
    return value is None


class SourceSpec(StrictModel):
    """Exactly one of: an experiment's current fit, a fit id, a published preset (the other two
    are left out when it is written back, as in POST /v1/compare's rows)."""

    experiment: SafeText | None = Field(default=None, max_length=64, exclude_if=_is_none)
    law: LawName = "chinchilla"
    method: MethodName = "parametric"
    fit_id: int | None = Field(default=None, ge=1, le=MAX_ID, exclude_if=_is_none)
    preset: SafeText | None = Field(
        default=None, max_length=64, examples=["chinchilla-2022"], exclude_if=_is_none
    )

    @model_validator(mode="after")
    def _one_source(self) -> "SourceSpec":
        given = [self.experiment is not None, self.fit_id is not None, self.preset is not None]
        if sum(given) != 1:
            raise ValueError("give exactly one of experiment, fit_id, preset")
        return self


class BudgetSpec(StrictModel):
    """Exactly one of flops, gpu_hours (with gpu, mfu), usd (with gpu, mfu, usd_per_gpu_hour),
    target_loss."""

    flops: PositiveFinite | None = Field(default=None, description="Training FLOPs (6ND).")
    gpu_hours: PositiveFinite | None = None
    usd: PositiveFinite | None = Field(default=None, description="Money, US dollars.")
    target_loss: PositiveFinite | None = Field(default=None, description="nats/token")
    gpu: SafeText | None = Field(default=None, examples=["H100-SXM"], max_length=64)
    mfu: float | None = Field(default=None, gt=0, le=1, description="Model FLOPs utilisation.")
    usd_per_gpu_hour: PositiveFinite | None = None

    @model_validator(mode="after")
    def _one_budget(self) -> "BudgetSpec":
        kinds = [self.flops, self.gpu_hours, self.usd, self.target_loss]
        if sum(kind is not None for kind in kinds) != 1:
            raise ValueError("give exactly one of flops, gpu_hours, usd, target_loss")
        if (self.gpu_hours is not None or self.usd is not None) and self.gpu is None:
            raise ValueError("gpu_hours and usd budgets need `gpu` (see GET /v1/hardware)")
        if self.usd is not None and self.usd_per_gpu_hour is None:
            raise ValueError("a usd budget needs usd_per_gpu_hour")
        return self


class ConstraintsSpec(StrictModel):
    max_params: PositiveFinite | None = None
    max_tokens: PositiveFinite | None = None
    unique_tokens: PositiveFinite | None = Field(
        default=None, description="Distinct training tokens available."
    )
    inference_tokens: float = Field(
        default=0.0, ge=0, allow_inf_nan=False, description="Lifetime inference tokens."
    )


class RecommendationRequest(StrictModel):
    source: SourceSpec
    budget: BudgetSpec
    constraints: ConstraintsSpec = Field(default_factory=ConstraintsSpec)
    confidence: float = Field(default=0.9, ge=0.5, le=0.999)

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "source": {"preset": "chinchilla-2022"},
                    "budget": {"flops": 5.88e23},
                    "constraints": {"max_params": 1e11},
                    "confidence": 0.9,
                }
            ]
        }
    )


class CompareRequest(StrictModel):
    sources: list[SourceSpec] = Field(min_length=1, max_length=20)
    budget: BudgetSpec
    constraints: ConstraintsSpec = Field(default_factory=ConstraintsSpec)
    confidence: float = Field(default=0.9, ge=0.5, le=0.999)

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "sources": [{"preset": "chinchilla-2022"}, {"preset": "epoch-2024"}],
                    "budget": {"flops": 1e24},
                }
            ]
        }
    )


class Interval(BaseModel):
    low: float
    high: float


class SourceOut(BaseModel):
    kind: Literal["fit", "preset"]
    fit_id: int | None = None
    experiment: str | None = None
    preset: str | None = None
    stale: bool = False


class HyperparameterOut(BaseModel):
    value: float
    rule: str = Field(description="The rule, in words, with its constants.")
    source: str = Field(description="`preset deepseek-2024`, or `fitted` (this experiment's runs).")
    flops: float = Field(description="The compute C the rule was evaluated at, in its convention.")
    flops_convention: str
    valid_flops: list[float] = Field(description="The compute range the rule was fitted on.")
    interval: list[float] | None = Field(
        description="At the answer's confidence; fitted rules only."
    )
    exponent_interval_95: list[float] | None = Field(description="Fitted rules only.")


class HyperparametersOut(BaseModel):
    """Peak learning rate and batch size for the recommended run (see docs/science.md)."""

    learning_rate: HyperparameterOut
    batch_size_tokens: HyperparameterOut
    batch_size_sequences: float | None = Field(
        description="batch_size_tokens / context_tokens, when the context is known."
    )
    context_tokens: int | None
    confidence: float
    warnings: list[str]
    notes: list[str] = Field(description="Where the vocabulary and context came from, and more.")


class Recommendation(BaseModel):
    params: float = Field(description="Parameters, in the law's convention (see `law`).")
    tokens: float = Field(description="Training tokens.")
    flops: float = Field(description="Training FLOPs, C = 6 * params * tokens.")
    tokens_per_param: float
    loss: float = Field(description="Predicted final loss, nats/token.")
    inference_flops: float = Field(description="2 * params * inference_tokens.")
    confidence: float
    intervals: dict[str, Interval] = Field(
        description="Bootstrap intervals at `confidence`; empty for presets and fits without "
        "resamples."
    )
    gpu: str | None
    mfu: float | None
    gpu_hours: float | None
    cost_usd: float | None
    shape: dict[str, int] = Field(
        description="n_layer, d_model, n_heads, head_dim, params, non_embedding_params, for the "
        "experiment's vocabulary (see `hyperparameters.notes`)."
    )
    law: dict[str, Any]
    source: SourceOut
    binding: list[str] = Field(description="Constraints that bind at the answer.")
    warnings: list[str]
    hyperparameters: HyperparametersOut | None = Field(
        default=None,
        description="Learning rate and batch size for this run: fitted from the experiment's "
        "own sweeps where they exist, else the DeepSeek LLM 2024 rules.",
    )


class CompareRow(BaseModel):
    """One source of POST /v1/compare: its recommendation, or why it could not answer."""

    source: SourceSpec
    recommendation: Recommendation | None = None
    error: ErrorBody | None = None
