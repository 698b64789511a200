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
    target_loss, or an inverse question: params, tokens."""

    flops: PositiveFinite | None = Field(
        default=None,
        description="FLOPs: training (6ND), or training and inference with "
        "constraints.inference_tokens (see constraints.budget_binds).",
    )
    gpu_hours: PositiveFinite | None = None
    usd: PositiveFinite | None = Field(default=None, description="Money, US dollars.")
    target_loss: PositiveFinite | None = Field(default=None, description="nats/token")
    params: PositiveFinite | None = Field(
        default=None,
        description="Inverse question: the model size (the law's parameter convention) whose "
        "compute-optimal FLOPs and tokens are wanted.",
    )
    tokens: PositiveFinite | None = Field(
        default=None,
        description="Inverse question: unique training tokens available; the compute-optimal "
        "model and FLOPs that train once on all of them.",
    )
    gpu: SafeText | None = Field(default=None, examples=["H100-SXM"], max_length=64)
    mfu: float | None = Field(default=None, gt=0, le=1, description="Model FLOPs utilisation.")
    usd_per_gpu_hour: PositiveFinite | None = None

    @model_validator(mode="after")
    def _one_budget(self) -> "BudgetSpec":
        kinds = [self.flops, self.gpu_hours, self.usd, self.target_loss, self.params, self.tokens]
        if sum(kind is not None for kind in kinds) != 1:
            raise ValueError(
                "give exactly one of flops, gpu_hours, usd, target_loss, params, tokens"
            )
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
    budget_binds: Literal["total", "training"] = Field(
        default="total",
        description="With inference_tokens, what a FLOP, GPU-hour or money budget pays for: "
        "`total` = training and inference (6ND + 2N inference_tokens), `training` = training "
        "only (6ND).",
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


class EqualLossOptimum(BaseModel):
    """The training-compute-optimal model (least 6ND, inference ignored) of the same loss,
    priced with the same inference tokens."""

    params: float
    tokens: float
    flops: float = Field(description="Training FLOPs, 6ND.")
    loss: float
    inference_flops: float
    total_flops: float


class Recommendation(BaseModel):
    params: float = Field(description="Parameters, in the law's convention (see `law`).")
    tokens: float = Field(description="Training tokens.")
    flops: float = Field(description="Training FLOPs, C = 6 * params * tokens.")
    tokens_per_param: float
    loss: float = Field(description="Predicted final loss, nats/token.")
    inference_flops: float = Field(description="2 * params * inference_tokens.")
    total_flops: float = Field(
        default=0.0, description="Lifetime FLOPs: flops (training) + inference_flops."
    )
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
    notes: list[str] = Field(
        default_factory=list,
        description="How the answer was reached: a published rule's conventions, what the "
        "budget paid for with inference tokens, what the inference-aware answer saves.",
    )
    equal_loss_optimum: EqualLossOptimum | None = Field(
        default=None,
        description="With inference tokens: the compute-optimal model of the same loss, to set "
        "the answer's lifetime FLOPs against.",
    )


class CompareRow(BaseModel):
    """One source of POST /v1/compare: its recommendation, or why it could not answer, and the
    conventions its numbers assume."""

    source: SourceSpec
    label: str = Field(default="", description="The source in words, as the disagreement names it.")
    recommendation: Recommendation | None = None
    error: ErrorBody | None = None
    params_convention: Literal["total", "non-embedding"] | None = Field(
        default=None, description="How `params` counts: total or without embeddings."
    )
    flops_convention: Literal["C", "C_min"] | None = Field(
        default=None,
        description="The compute the allocation reads: C = 6ND, or Kaplan et al.'s C_min "
        "(C/2) for the kaplan-2020 rule.",
    )
    conventions: str | None = Field(default=None, description="The conventions, in words.")


class Spread(BaseModel):
    """One quantity across the sources that answered."""

    low: float
    high: float
    low_label: str
    high_label: str
    ratio: float = Field(description="high / low.")
    difference: float = Field(description="high - low (for loss: nats/token).")
    intervals_overlap: bool | None = Field(
        description="Whether all bootstrap intervals share a point; null with fewer than two."
    )


class Disagreement(BaseModel):
    answered: int
    spreads: dict[str, Spread] = Field(description="params, tokens, flops, loss.")
    caveats: list[str] = Field(description="What part of the spread is convention or data.")
    statement: str


class Comparison(BaseModel):
    """POST /v1/compare: a row per source, then how far apart the answers are."""

    rows: list[CompareRow]
    disagreement: Disagreement
