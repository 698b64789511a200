"""Run by tests/trainer/test_trainer_rotary_fused.py in a process of its own, with
TRITON_INTERPRET=1 set before Triton is imported (it decides at decoration time)."""

from __future__ import annotations

import json
import sys

import torch

from service.trainer import rotary_fused
from service.trainer.rotary import rotary_tables, rotate_with_torch_ops


def main() -> None:
    assert rotary_fused.fused_rotary is not None, "Triton did not import"
    torch.manual_seed(0)
    out = []
    # The trainer's layout: q and k of a (batch, time, 3, heads, head_dim) projection; head_dim
    # 6 has an odd half (the kernel masks up to the next power of two).
    for dtype in (torch.float32, torch.bfloat16):
        for b, t, h, hd in ((2, 16, 3, 8), (1, 5, 2, 6)):
            cos, sin = (z.to(dtype) for z in rotary_tables(hd, t))
            qkv = torch.randn(b, t, 3, h, hd, dtype=dtype, requires_grad=True)
            grad = torch.randn(b, t, 2, h, hd, dtype=dtype)
            results = []
            for rotate in (rotary_fused.fused_rotary, rotate_with_torch_ops):
                qk = qkv[:, :, :2]
                y = rotate(qk, cos, sin)
                (g,) = torch.autograd.grad(y, qkv, grad)
                results.append((y.detach().float(), g.float()))
            (y1, g1), (y2, g2) = results
            out.append(
                {
                    "dtype": str(dtype),
                    "shape": [b, t, h, hd],
                    "forward": float((y1 - y2).abs().max() / y2.abs().max()),
                    "backward": float((g1 - g2).abs().max() / g2.abs().max()),
                    "v_grad_zero": bool((g1[:, :, 2] == 0).all()),
                }
            )
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
