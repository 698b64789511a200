"""The result of one training run, JSON-ready; every number names its unit."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

Status = Literal["ok", "diverged", "nan", "timeout"]
# Where a point's loss was measured: at the end of a cosine schedule, after a WSD cooldown
# branch, or in the middle of a schedule (a loss curve's point; the trainer reports none).
LossProvenance = Literal["end_of_schedule", "after_cooldown", "mid_schedule"]


@dataclass(frozen=True)
class TrainPoint:
    """One (params, tokens, flops, loss) point of a run: the run's params, and the tokens,
    FLOPs and validation loss of the schedule that ends here.

    flops_6nd = 6 * (non-embedding + head params) * tokens, the whole schedule's: for a WSD
    branch, its share of the trunk (cooldown_start_tokens) plus its cooldown.
    """

    tokens: int
    steps: int
    flops_6nd: float
    flops_with_attention: float
    val_loss: float  # nats/token
    val_bits_per_byte: float
    loss_provenance: LossProvenance
    cooldown_fraction: float | None  # cooled-down steps / steps; None for cosine
    cooldown_start_tokens: int | None  # the trunk's tokens at the branch; None for cosine


@dataclass(frozen=True)
class TrainResult:
    status: Status
    config: dict[str, Any]
    # parameter counts (head tied to the embedding; total counts it once)
    non_embedding_params: int
    embedding_params: int
    head_params: int
    total_params: int
    # work done
    tokens: int
    steps: int
    batch_tokens: int
    peak_lr: float
    beta2: float
    warmup_steps: int
    epochs: float
    flops_6nd: float
    flops_with_attention: float
    flops_formula: str
    # quality
    val_loss: float | None
    val_bits_per_byte: float | None
    train_loss_curve: list[tuple[int, float]]
    # speed
    wall_time_s: float
    train_time_s: float
    tokens_per_s: float
    flops_per_s: float
    mfu: float | None
    peak_flops_per_s: float | None
    peak_memory_bytes: int | None  # GPU: peak allocated; CPU: peak resident set
    # identity
    corpus_id: str
    corpus_hash: str
    tokenizer_hash: str
    unique_train_tokens: int
    versions: dict[str, str]
    warnings: list[str]
    # schedule: cosine gives one point (end_of_schedule); wsd one per finished branch
    # (after_cooldown), shortest first. tokens, steps, flops and val_loss above are those of
    # the last point; trained_tokens and trained_flops_6nd count the work actually done
    # (the trunk once, plus every cooldown).
    schedule: str
    points: list[TrainPoint]
    trained_tokens: int
    trained_flops_6nd: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainResult:
        """Inverse of to_dict (the result file the `train` command writes)."""
        values = dict(data)
        values["train_loss_curve"] = [tuple(point) for point in values["train_loss_curve"]]
        values["points"] = [TrainPoint(**point) for point in values["points"]]
        return cls(**values)
