"""Small-language-model trainer (optional extra `train`); torch is imported only by train()."""

from __future__ import annotations

from typing import TYPE_CHECKING

from service.trainer.config import CorpusSpec, ModelShape, TrainConfig
from service.trainer.result import TrainResult

if TYPE_CHECKING:
    pass

__all__ = ["CorpusSpec", "ModelShape", "TrainConfig", "TrainResult", "train"]


def train(config: TrainConfig) -> TrainResult:
    """Train one model; see service.trainer.loop.train."""
    from service.trainer.loop import train as _train

    return _train(config)
