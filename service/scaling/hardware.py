"""Accelerator catalogue: dense (no sparsity) bf16 peak throughput, with its source.

Vendor sheets often quote "with sparsity" numbers; these are the dense ones (half of those).
GPU-hours = C / (peak FLOP/s x MFU x 3600).
"""

from __future__ import annotations

from dataclasses import dataclass

from service.scaling.errors import InvalidArgumentError, UnknownNameError


@dataclass(frozen=True)
class Accelerator:
    name: str
    peak_bf16_flops: float  # FLOP/s, dense
    memory_gb: float
    source: str


CATALOGUE: dict[str, Accelerator] = {
    a.name: a
    for a in (
        Accelerator("A100-SXM", 312e12, 80, "NVIDIA A100 datasheet: BF16 Tensor Core 312 TFLOPS"),
        Accelerator("A100-PCIE", 312e12, 80, "NVIDIA A100 datasheet: BF16 Tensor Core 312 TFLOPS"),
        Accelerator(
            "H100-SXM", 989.4e12, 80, "NVIDIA H100 datasheet: BF16 1,979 TFLOPS with sparsity"
        ),
        Accelerator(
            "H100-PCIE", 756e12, 80, "NVIDIA H100 datasheet: BF16 1,513 TFLOPS with sparsity"
        ),
        Accelerator(
            "H200", 989.4e12, 141, "NVIDIA H200 datasheet: BF16 1,979 TFLOPS with sparsity"
        ),
        Accelerator("L40S", 362.05e12, 48, "NVIDIA L40S datasheet: BF16 733 TFLOPS with sparsity"),
        Accelerator(
            "MI300X", 1307.4e12, 192, "AMD Instinct MI300X datasheet: BF16 1307.4 TFLOPS dense"
        ),
        Accelerator("TPU-v4", 275e12, 32, "Google Cloud TPU v4 docs: 275 TFLOPS bf16 per chip"),
        Accelerator("TPU-v5p", 459e12, 95, "Google Cloud TPU v5p docs: 459 TFLOPS bf16 per chip"),
    )
}
_ALIASES = {"A100": "A100-SXM", "H100": "H100-SXM"}


def accelerator(name: str) -> Accelerator:
    key = name.strip().upper().replace("_", "-").replace(" ", "-")
    key = _ALIASES.get(key, key)
    for k, v in CATALOGUE.items():
        if k.upper() == key:
            return v
    raise UnknownNameError(kind="accelerator", name=name, known=sorted(CATALOGUE))


def check_mfu(mfu: float) -> None:
    if not 0.0 < mfu <= 1.0:
        raise InvalidArgumentError(name="mfu", reason=f"{mfu!r} is not in (0, 1]")


def gpu_hours(flops: float, gpu: Accelerator, mfu: float) -> float:
    check_mfu(mfu)
    return flops / (gpu.peak_bf16_flops * mfu * 3600.0)


def flops_from_gpu_hours(hours: float, gpu: Accelerator, mfu: float) -> float:
    check_mfu(mfu)
    return hours * gpu.peak_bf16_flops * mfu * 3600.0
