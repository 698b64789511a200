"""The result of one training run, JSON-ready; every number names its unit."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

Status = Literal["ok", "diverged", "nan", "timeout"]


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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainResult:
        """Inverse of to_dict (the result file the `train` command writes)."""
        values = dict(data)
        values["train_loss_curve"] = [tuple(point) for point in values["train_loss_curve"]]
        return cls(**values)
