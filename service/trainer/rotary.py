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
    that survives the bf16 attention inputs. Eager on CUDA, it is one Triton kernel each way
    (service/trainer/rotary_fused.py): written out in torch ops it cost the eager step about a
    fifth of its time at 25M parameters on an H200 (bench/results/trainer_gpu.md). Compiled,
    the torch ops below are traced and inductor fuses them.
    """
    if x.is_cuda and not torch.compiler.is_compiling():
        from service.trainer.rotary_fused import fused_rotary

        if fused_rotary is not None:
            return fused_rotary(x, cos, sin)
    return rotate_with_torch_ops(x, cos, sin)


def rotate_with_torch_ops(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """apply_rotary written out in torch ops: CPU, compiled models, and the fused kernel's check."""
    x1, x2 = x.chunk(2, dim=-1)
    shape = (x.shape[1],) + (1,) * (x.dim() - 3) + (x.shape[-1],)
    rotated = torch.cat((-x2, x1), dim=-1)
    return x * cos.view(shape) + rotated * sin.view(shape)
