"""Rotary position embeddings, rotating (first half, second half) pairs of each head."""

from __future__ import annotations

import torch
from torch import Tensor


def rotary_tables(head_dim: int, context_tokens: int) -> tuple[Tensor, Tensor]:
    """cos and sin, float32, shape (context, head_dim): each angle once per half."""
    inv_freq = 1.0 / (10000 ** (torch.arange(0, head_dim, 2).float() / head_dim))
    angles = torch.outer(torch.arange(context_tokens).float(), inv_freq)
    angles = torch.cat((angles, angles), dim=-1)
    return angles.cos(), angles.sin()


def apply_rotary(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotates x of shape (batch, time, ..., head_dim) by position.

    cos and sin: (time, head_dim) tables from rotary_tables, in x's dtype. Done in x's dtype:
    under bf16 autocast an fp32 round trip cost the eager step memory traffic for no accuracy
    that survives the bf16 attention inputs. Still, rotary costs the eager step about a fifth of
    its time at 25M parameters on an H200, where a hand-written backward (three kernels, nothing
    saved) measured no faster (bench/results/trainer_gpu.md); compiled, it is fused away.
    """
    x1, x2 = x.chunk(2, dim=-1)
    shape = (x.shape[1],) + (1,) * (x.dim() - 3) + (x.shape[-1],)
    rotated = torch.cat((-x2, x1), dim=-1)
    return x * cos.view(shape) + rotated * sin.view(shape)
