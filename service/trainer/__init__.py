"""Small-language-model trainer (optional extra `train`); torch is imported only by train()."""

from __future__ import annotations

from collections.abc import Callable

from service.trainer.config import CorpusSpec, ModelShape, TrainConfig
from service.trainer.result import TrainResult

__all__ = ["CorpusSpec", "ModelShape", "TrainConfig", "TrainResult", "train"]


def train(
    config: TrainConfig, progress: Callable[[int, int, float], None] | None = None
) -> TrainResult:
    """Train one model; see service.trainer.loop.train. Needs torch."""
    from service.trainer.loop import train as _train

    return _train(config, progress)
