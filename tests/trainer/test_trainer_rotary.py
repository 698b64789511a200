from __future__ import annotations

import torch

from service.trainer.rotary import apply_rotary, rotary_tables


def test_rotation_keeps_norms_and_scores_depend_on_offset_only() -> None:
    head_dim, context = 8, 12
    cos, sin = rotary_tables(head_dim, context)
    gen = torch.Generator().manual_seed(0)
    q = torch.randn(head_dim, generator=gen, dtype=torch.float64)
    k = torch.randn(head_dim, generator=gen, dtype=torch.float64)
    # One query and one key repeated at every position: (batch 1, time, head 1, head_dim).
    qs = apply_rotary(q.expand(1, context, 1, head_dim), cos.double(), sin.double())[0, :, 0]
    ks = apply_rotary(k.expand(1, context, 1, head_dim), cos.double(), sin.double())[0, :, 0]
    torch.testing.assert_close(qs.norm(dim=-1), q.norm().expand(context))
    scores = qs @ ks.T
    for offset in (0, 1, 5):
        diagonal = torch.diagonal(scores, offset)
        torch.testing.assert_close(diagonal, diagonal[0].expand_as(diagonal))
    assert not torch.allclose(torch.diagonal(scores, 0)[0], torch.diagonal(scores, 1)[0])


def test_position_zero_is_the_identity() -> None:
    cos, sin = rotary_tables(4, 3)
    x = torch.randn(2, 1, 3, 4)
    torch.testing.assert_close(apply_rotary(x, cos[:1], sin[:1]), x)
