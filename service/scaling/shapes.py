"""A GPT-style model shape for a parameter count.

Non-embedding params = 12 n_layer d_model^2 (attention 4d^2 + MLP 8d^2 with d_ff = 4d), plus
vocab_size x d_model for a tied embedding when ``params`` counts all parameters. The usual aspect
ratio d_model / n_layer is about 128 (GPT-3 175B: 12288 / 96); d_model is a multiple of the
head size (64 below d_model 1024, else 128).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from service.scaling.errors import InvalidDataError


@dataclass(frozen=True)
class ModelShape:
    n_layer: int
    d_model: int
    n_heads: int
    head_dim: int
    params: int  # of this shape, counted the same way as the request
    non_embedding_params: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def shape_for_params(
    params: float, aspect_ratio: float = 128.0, vocab_size: int = 32000, total: bool = True
) -> ModelShape:
    """Closest shape at ``aspect_ratio`` (d_model / n_layer) to ``params`` parameters.

    total: ``params`` includes the (tied) embedding, as in Chinchilla; False: non-embedding, as
    in Kaplan.
    """
    if not np.isfinite(params) or params <= 0:
        raise InvalidDataError(column="params", rows=f"{params}")
    best: ModelShape | None = None
    best_cost = np.inf
    for n_layer in range(1, 257):
        d_ideal = aspect_ratio * n_layer
        head = 64 if d_ideal < 1024 else 128
        base = max(1, round(d_ideal / head))
        for mult in range(max(1, base - 4), base + 5):
            d_model = mult * head
            ne = 12 * n_layer * d_model**2
            count = ne + (vocab_size * d_model if total else 0)
            # Parameter count first; the aspect ratio only breaks near-ties.
            cost = abs(np.log(count / params)) + 0.02 * abs(np.log(d_model / d_ideal))
            if cost < best_cost:
                best_cost = cost
                best = ModelShape(n_layer, d_model, d_model // head, head, int(count), int(ne))
    assert best is not None
    return best
