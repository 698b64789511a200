"""The trainer's shape family: the GPTs that service/trainer builds, indexed by total parameters.

This is the size contract between the planner, the job queue and the trainer: a planned run's
``params`` is the total parameter count of a shape in this family, so the trainer builds exactly
what was planned and 6 N D of the plan is 6 N D of the run.

Counts (as service/trainer/model.py builds them): per layer 12 d^2 (attention 4 d^2, MLP 8 d^2
with d_ff = 4d) plus 2d (two bias-free LayerNorm weights), a final LayerNorm d, and one
vocab x d embedding tied to the output head: total = non-embedding + vocab * d.

Shapes: d_model a multiple of 16 (of 64 from 512, of 128 from 4096), d_model / n_layer between
32 and 128 (the smallest model, one layer of width 16, below that), head size by width
(``head_dim``). A size *ladder* keeps one shape per step of at least ``LADDER_RATIO`` in total
parameters, the one closest to the aspect ratio 64, so that distinct planned sizes really differ.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from numpy.typing import NDArray

from service.scaling.errors import InvalidArgumentError
from service.scaling.shapes import ModelShape

MIN_ASPECT, TARGET_ASPECT, MAX_ASPECT = 32, 64, 128
MAX_LAYERS = 128
# Neighbouring sizes on the ladder differ by at least this factor in total parameters.
LADDER_RATIO = 1.15
# Trade-off between matching the parameter count and the aspect ratio when snapping.
ASPECT_WEIGHT = 0.05
IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]


def head_dim(d_model: int) -> int:
    """Head size: four heads (16 to 64 wide) below width 256, then heads of 64 (of 32 or 16
    where 64 does not divide the width), and of 128 from width 4096.

    From bench/recipe_sweep.py (bench/results/recipe_sweep.md): at width 64 and equal tokens,
    four heads of 16 beat two of 32 by 0.02-0.04 nats and one of 64 by 0.1.
    """
    if d_model >= 4096 and d_model % 128 == 0:
        return 128
    if d_model < 256:
        return min(64, max(16, d_model // 4))
    return next(h for h in (64, 32, 16) if d_model % h == 0)


def count_params(n_layer: int, d_model: int, vocab_size: int) -> tuple[int, int]:
    """(non-embedding, total) parameters of one shape."""
    non_embedding = n_layer * (12 * d_model * d_model + 2 * d_model) + d_model
    return non_embedding, non_embedding + vocab_size * d_model


def _widths() -> IntArray:
    return np.unique(
        np.concatenate(
            [np.arange(16, 512, 16), np.arange(512, 4096, 64), np.arange(4096, 16385, 128)]
        )
    ).astype(np.int64)


@lru_cache(maxsize=32)
def _ladder(vocab_size: int) -> tuple[IntArray, IntArray, FloatArray, FloatArray]:
    """(n_layer, d_model, non-embedding, total) of the ladder, ascending in total params."""
    layers: list[int] = []
    widths: list[int] = []
    for width in _widths().tolist():
        for depth in range(1, MAX_LAYERS + 1):
            if MIN_ASPECT <= width / depth <= MAX_ASPECT or (width == 16 and depth == 1):
                layers.append(depth)
                widths.append(width)
    n_layer = np.asarray(layers, dtype=np.int64)
    d_model = np.asarray(widths, dtype=np.int64)
    d = d_model.astype(np.float64)
    non_emb = n_layer * (12 * d * d + 2 * d) + d
    total = non_emb + vocab_size * d
    order = np.argsort(total, kind="stable")
    n_layer, d_model, non_emb, total = n_layer[order], d_model[order], non_emb[order], total[order]
    aspect_cost = np.abs(np.log(d_model / (TARGET_ASPECT * n_layer)))
    keep: list[int] = []
    start = 0
    while start < total.size:
        # Among shapes within one ladder step of this one, keep the best-proportioned.
        end = int(np.searchsorted(total, total[start] * LADDER_RATIO, side="left"))
        end = max(end, start + 1)
        keep.append(start + int(np.argmin(aspect_cost[start:end])))
        start = int(np.searchsorted(total, total[keep[-1]] * LADDER_RATIO, side="left"))
        start = max(start, keep[-1] + 1)
    idx = np.asarray(keep, dtype=np.int64)
    return n_layer[idx], d_model[idx], non_emb[idx], total[idx]


@dataclass(frozen=True)
class ShapeFamily:
    """The buildable shapes for one vocabulary and context (byte-level: vocab 256).

    min_tokens: the fewest tokens a run of this family may train on (the trainer's minimum
    optimizer steps of one sequence each); the planner never plans a run below it.
    """

    vocab_size: int = 256
    context_tokens: int = 1024
    min_tokens: int = 1

    def __post_init__(self) -> None:
        if min(self.vocab_size, self.context_tokens, self.min_tokens) < 1:
            raise InvalidArgumentError(
                name="shape family", reason=f"{self}: every field must be >= 1"
            )

    @property
    def sizes(self) -> FloatArray:
        """Total parameters of every shape on the ladder, ascending."""
        return _ladder(self.vocab_size)[3]

    def shape(self, index: int) -> ModelShape:
        n_layer, d_model, non_emb, total = (a[index] for a in _ladder(self.vocab_size))
        head = head_dim(int(d_model))
        return ModelShape(
            int(n_layer), int(d_model), int(d_model) // head, head, int(total), int(non_emb)
        )

    def nearest_index(self, params: float | FloatArray) -> NDArray[np.int64]:
        """Ladder index of the size nearest (in log) to each params."""
        values = np.asarray(params, dtype=np.float64)
        if not np.all(np.isfinite(values)) or np.any(values <= 0):
            raise InvalidArgumentError(name="params", reason=f"{params!r}: not finite and positive")
        logs = np.log(self.sizes)
        return np.asarray(
            np.argmin(np.abs(np.log(values)[..., None] - logs), axis=-1), dtype=np.int64
        )

    def nearest_non_embedding(self, non_embedding_params: float) -> ModelShape:
        """The ladder's shape whose non-embedding count is nearest (Kaplan's convention)."""
        if not np.isfinite(non_embedding_params) or non_embedding_params <= 0:
            raise InvalidArgumentError(
                name="non_embedding_params",
                reason=f"{non_embedding_params!r} is not finite and positive",
            )
        non_emb = _ladder(self.vocab_size)[2]
        return self.shape(int(np.argmin(np.abs(np.log(non_emb / non_embedding_params)))))

    def snap(self, params: float) -> ModelShape:
        """The buildable shape whose total parameters are nearest to ``params``."""
        return self.shape(int(self.nearest_index(params)))

    def max_params_for(self, flops: float) -> float:
        """The largest total params a run of ``flops`` (6 N D) may have: D >= min_tokens."""
        return flops / (6.0 * self.min_tokens)

    def distinct_near(self, targets: Sequence[float], flops: float) -> list[ModelShape] | None:
        """One distinct shape per target (targets ascending), each as near its target as the
        others allow, all trainable at ``flops`` (D >= min_tokens); None when the family has
        too few such shapes."""
        sizes = self.sizes
        usable = int(np.searchsorted(sizes, self.max_params_for(flops), side="right"))
        if usable < len(targets):
            return None
        logs = np.log(sizes[:usable])
        wanted = np.log(np.asarray(sorted(targets), dtype=np.float64))
        chosen: list[int] = []
        for i, target in enumerate(wanted):
            low = chosen[-1] + 1 if chosen else 0
            # leave room for the targets still to place
            high = usable - (len(wanted) - i - 1)
            pick = low + int(np.argmin(np.abs(logs[low:high] - target)))
            chosen.append(pick)
        return [self.shape(i) for i in chosen]
