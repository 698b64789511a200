"""Analytic parameter and FLOP counts for the GPT in model.py (no torch needed)."""

from __future__ import annotations

from dataclasses import dataclass

from service.trainer.config import ModelShape


@dataclass(frozen=True)
class ParamCounts:
    """Parameter counts. The head is tied to the embedding: counted once in total_params."""

    non_embedding_params: int
    embedding_params: int
    head_params: int
    total_params: int


def param_counts(shape: ModelShape) -> ParamCounts:
    """Per layer: qkv + out 4d^2, MLP 8d^2, two bias-free LayerNorms 2d; plus the final norm d."""
    d = shape.d_model
    non_embedding = shape.n_layer * (12 * d * d + 2 * d) + d
    embedding = shape.vocab_size * d
    return ParamCounts(
        non_embedding_params=non_embedding,
        embedding_params=embedding,
        head_params=embedding,
        total_params=non_embedding + embedding,
    )


def flops_6nd(shape: ModelShape, tokens: int) -> float:
    """6 * (non-embedding + head params) * tokens: the Chinchilla convention, head included."""
    counts = param_counts(shape)
    return 6.0 * (counts.non_embedding_params + counts.head_params) * tokens


def attention_flops(shape: ModelShape, tokens: int) -> float:
    """12 * n_layer * d_model * context * tokens: QK^T and AV, forward and backward, no masking."""
    return 12.0 * shape.n_layer * shape.d_model * shape.context_tokens * tokens


def flops_with_attention(shape: ModelShape, tokens: int) -> float:
    """flops_6nd plus attention_flops."""
    return flops_6nd(shape, tokens) + attention_flops(shape, tokens)


def tokens_for_flops(shape: ModelShape, target_flops: float) -> int:
    """Tokens D with 6 * (non-embedding + head) * D = target_flops, at least one."""
    counts = param_counts(shape)
    return max(1, round(target_flops / (6.0 * (counts.non_embedding_params + counts.head_params))))
