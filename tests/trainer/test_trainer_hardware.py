from __future__ import annotations

from service.trainer.hardware import peak_flops


def test_peak_is_known_for_hopper_bf16_and_unknown_elsewhere() -> None:
    assert peak_flops("NVIDIA H100 80GB HBM3", "bfloat16") == 989.4e12
    assert peak_flops("NVIDIA H200", "bfloat16") == 989.4e12
    assert peak_flops("NVIDIA H200", "float32") == 66.9e12
    assert peak_flops("AMD EPYC", "float32") is None
    assert peak_flops("NVIDIA GeForce RTX 4090", "bfloat16") is None
