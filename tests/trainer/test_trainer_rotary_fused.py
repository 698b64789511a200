"""The Triton rotary kernel of the eager CUDA path, run by Triton's interpreter on the CPU:
forward and backward equal the torch ops (exactly in float32, to bf16's rounding in bf16)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow(seconds=8)
def test_the_fused_kernel_rotates_like_the_torch_ops_both_ways() -> None:
    env = {**os.environ, "TRITON_INTERPRET": "1", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "tests.trainer.fused_rotary_check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    cases = json.loads(done.stdout)
    assert len(cases) == 4
    for case in cases:
        # float32: the kernel computes in float32 as the torch ops do, the same products.
        tol = 1e-6 if case["dtype"] == "torch.float32" else 1e-2
        assert case["forward"] <= tol, case
        assert case["backward"] <= tol, case
        assert case["v_grad_zero"], case  # only q and k are rotated
