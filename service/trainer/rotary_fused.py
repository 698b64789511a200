"""Rotary embeddings as one Triton kernel each way, for the eager path on CUDA.

Written out in torch ops, rotary costs the eager step about a fifth of its time at 25M
parameters on an H200 (chunk, neg, cat, two multiplies and an add forward, as many backward,
each a pass over q and k). Here each direction is one pass: read x, cos and sin, write the
rotated x; the backward rotates the gradient by the opposite angle and saves nothing but the
tables. Compiled models keep the torch formulation, which inductor fuses by itself.

Importing this module needs Triton (it ships with CUDA builds of torch); `fused_rotary` is None
where Triton is missing, and callers fall back to the torch formulation.
"""

from typing import Any

import torch
from torch import Tensor

try:
    import triton
    import triton.language as tl
except ImportError:  # CPU builds of torch ship without Triton
    triton = None

ROWS_PER_PROGRAM = 16


if triton is not None:

    @triton.jit
    def _rotate_rows(  # type: ignore[no-untyped-def]  # Triton reads these annotations
        x_ptr,
        cos_ptr,
        sin_ptr,
        out_ptr,
        rows,
        time_len,
        mid_len,
        stride_b,
        stride_t,
        stride_m,
        HALF: tl.constexpr,
        BLOCK_HALF: tl.constexpr,
        BLOCK_ROWS: tl.constexpr,
        INVERSE: tl.constexpr,
    ):
        # A row is one head's vector at one (batch, time, head) position; the output is
        # contiguous (batch, time, mid, head_dim), the input any strides with a unit last one.
        row = tl.program_id(0).to(tl.int64) * BLOCK_ROWS + tl.arange(0, BLOCK_ROWS)
        mid = row % mid_len
        t = (row // mid_len) % time_len
        b = row // (mid_len * time_len)
        d = tl.arange(0, BLOCK_HALF)
        mask = (row < rows)[:, None] & (d < HALF)[None, :]
        src = (b * stride_b + t * stride_t + mid * stride_m)[:, None] + d[None, :]
        x1 = tl.load(x_ptr + src, mask=mask).to(tl.float32)
        x2 = tl.load(x_ptr + src + HALF, mask=mask).to(tl.float32)
        table = (t * (2 * HALF))[:, None] + d[None, :]
        c = tl.load(cos_ptr + table, mask=mask).to(tl.float32)
        s = tl.load(sin_ptr + table, mask=mask).to(tl.float32)
        if INVERSE:
            s = -s
        dst = (row * (2 * HALF))[:, None] + d[None, :]
        out_ty = out_ptr.dtype.element_ty
        tl.store(out_ptr + dst, (x1 * c - x2 * s).to(out_ty), mask=mask)
        tl.store(out_ptr + dst + HALF, (x2 * c + x1 * s).to(out_ty), mask=mask)


def _launch(x: Tensor, cos: Tensor, sin: Tensor, *, inverse: bool) -> Tensor:
    b, t, head_dim = x.shape[0], x.shape[1], x.shape[-1]
    rows3 = x if x.stride(-1) == 1 else x.contiguous()
    try:
        x4 = rows3.view(b, t, -1, head_dim)
    except RuntimeError:  # middle dims not collapsible as a view
        x4 = rows3.reshape(b, t, -1, head_dim)
    if x4.stride(-1) != 1:
        x4 = x4.contiguous()
    out = torch.empty(x.shape, dtype=x.dtype, device=x.device)
    rows = x4.shape[0] * x4.shape[1] * x4.shape[2]
    half = head_dim // 2
    grid = (triton.cdiv(rows, ROWS_PER_PROGRAM),)
    _rotate_rows[grid](
        x4,
        cos.contiguous(),
        sin.contiguous(),
        out,
        rows,
        t,
        x4.shape[2],
        x4.stride(0),
        x4.stride(1),
        x4.stride(2),
        HALF=half,
        BLOCK_HALF=triton.next_power_of_2(half),
        BLOCK_ROWS=ROWS_PER_PROGRAM,
        INVERSE=inverse,
    )
    return out


class _FusedRotary(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
        ctx.save_for_backward(cos, sin)
        return _launch(x, cos, sin, inverse=False)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None, None]:
        cos, sin = ctx.saved_tensors
        return _launch(grad, cos, sin, inverse=True), None, None


def _fused_rotary(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """x (batch, time, ..., head_dim) on CUDA, cos and sin (time, head_dim); as apply_rotary."""
    out: Tensor = _FusedRotary.apply(x, cos, sin)  # type: ignore[no-untyped-call]
    return out


fused_rotary = _fused_rotary if triton is not None else None
