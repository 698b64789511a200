"""A GPT-style model shape for a parameter count.

Non-embedding params = 12 n_layer d_model^2 (attention 4d^2 + MLP 8d^2 with d_ff = 4d), plus
vocab_size x d_model for a tied embedding when ``params`` counts all parameters. The usual aspect
ratio d_model / n_layer is about 128 (GPT-3 175B: 12288 / 96); d_model is a multiple of the
head size (64 below d_model 1024, else 128).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from numpy.typing import NDArray

from service.scaling.errors import InvalidArgumentError

# Assumed when nothing says the experiment's vocabulary (a Llama-2-sized tokenizer).
DEFAULT_VOCAB_SIZE = 32000


@dataclass(frozen=True)
class ModelShape:
    n_layer: int
    d_model: int
    n_heads: int
    head_dim: int
    params: int  # of this shape, counted the same way as the request
    non_embedding_params: int

    def to_json(self) -> dict[str, Any]:
        return dict(vars(self))  # flat ints: no deep copy needed


@lru_cache(maxsize=16)
def _candidates(aspect_ratio: float) -> tuple[NDArray[np.int64], ...]:
    """Every (n_layer, d_model, head) tried: 1 to 256 layers, d_model near the aspect ratio."""
    layers, widths, heads = [], [], []
    for n_layer in range(1, 257):
        d_ideal = aspect_ratio * n_layer
        head = 64 if d_ideal < 1024 else 128
        base = max(1, round(d_ideal / head))
        for mult in range(max(1, base - 4), base + 5):
            layers.append(n_layer)
            widths.append(mult * head)
            heads.append(head)
    return tuple(np.asarray(v, dtype=np.int64) for v in (layers, widths, heads))


def shape_for_params(
    params: float,
    *,
    aspect_ratio: float = 128.0,
    vocab_size: int = DEFAULT_VOCAB_SIZE,
    total: bool = True,
) -> ModelShape:
    """Closest shape at ``aspect_ratio`` (d_model / n_layer) to ``params`` parameters.

    total: ``params`` includes the (tied) embedding, as in Chinchilla; False: non-embedding, as
    in Kaplan.
    """
    if vocab_size < 1:
        raise InvalidArgumentError(name="vocab_size", reason=f"{vocab_size!r} is below 1")
    if not np.isfinite(params) or params <= 0:
        raise InvalidArgumentError(name="params", reason=f"{params!r} is not finite and positive")
    n_layer, d_model, head = _candidates(aspect_ratio)
    ne, count, aspect_penalty = _counts(aspect_ratio, vocab_size, total)
    # Parameter count first; the aspect ratio only breaks near-ties.
    i = int(np.argmin(np.abs(np.log(count / params)) + aspect_penalty))
    return ModelShape(
        int(n_layer[i]),
        int(d_model[i]),
        int(d_model[i] // head[i]),
        int(head[i]),
        int(count[i]),
        int(ne[i]),
    )


@lru_cache(maxsize=64)
def _counts(
    aspect_ratio: float, vocab_size: int, total: bool
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Per candidate: non-embedding params, params as counted, and the aspect-ratio tie-breaker
    (the same for every request with these settings, so computed once)."""
    n_layer, d_model, _ = _candidates(aspect_ratio)
    ne = 12 * n_layer * d_model.astype(np.float64) ** 2
    count = ne + (vocab_size * d_model if total else 0)
    penalty = 0.02 * np.abs(np.log(d_model / (aspect_ratio * n_layer)))
    for array in (ne, count, penalty):
        array.flags.writeable = False  # shared by every call
    return ne, count, penalty
