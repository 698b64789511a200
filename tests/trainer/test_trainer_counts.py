from __future__ import annotations

import math

import pytest

from service.trainer.config import ModelShape, shape_for_non_embedding_params
from service.trainer.counts import (
    attention_flops,
    flops_6nd,
    flops_with_attention,
    param_counts,
    tokens_for_flops,
)
from service.trainer.model import GPT

SHAPES = [ModelShape(2, 48, 2, 64), ModelShape(3, 64, 4, 32, 300), ModelShape(1, 96, 3, 16)]


@pytest.mark.parametrize("shape", SHAPES)
def test_param_counts_match_the_torch_model(shape: ModelShape) -> None:
    model = GPT(shape)
    counts = param_counts(shape)
    assert counts.total_params == sum(p.numel() for p in model.parameters())
    assert counts.embedding_params == model.embed.weight.numel()
    d, layers = shape.d_model, shape.n_layer
    assert counts.non_embedding_params == layers * (12 * d * d + 2 * d) + d
    assert counts.head_params == shape.vocab_size * d


def test_flops_follow_the_named_formulas() -> None:
    shape = ModelShape(n_layer=4, d_model=128, n_head=2, context_tokens=256)
    tokens = 1_000_000
    non_emb = 4 * (12 * 128**2 + 2 * 128) + 128
    assert flops_6nd(shape, tokens) == 6 * (non_emb + 256 * 128) * tokens
    assert attention_flops(shape, tokens) == 12 * 4 * 128 * 256 * tokens
    assert flops_with_attention(shape, tokens) == flops_6nd(shape, tokens) + attention_flops(
        shape, tokens
    )


def test_tokens_for_flops_inverts_6nd() -> None:
    shape = ModelShape(n_layer=2, d_model=64, n_head=1)
    tokens = tokens_for_flops(shape, 1e12)
    assert flops_6nd(shape, tokens) == pytest.approx(1e12, rel=1e-6)


@pytest.mark.parametrize("target", [5e4, 1e6, 25e6, 1e8])
def test_shape_family_lands_near_the_target(target: float) -> None:
    shape = shape_for_non_embedding_params(target)
    assert abs(math.log(param_counts(shape).non_embedding_params / target)) < math.log(1.6)
    assert shape.d_model % shape.n_head == 0


def test_shape_family_grows_with_the_target() -> None:
    sizes = [
        param_counts(shape_for_non_embedding_params(n)).non_embedding_params
        for n in [1e5, 3e5, 1e6, 3e6, 1e7, 3e7]
    ]
    assert sizes == sorted(sizes)
