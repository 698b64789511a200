"""Peak dense FLOP/s by device name, for MFU. Vendor datasheet figures (dense, no sparsity)."""

from __future__ import annotations

# (substring of the device name, dtype) -> FLOP/s. The H200 has the H100 SXM's compute.
_PEAKS: tuple[tuple[str, str, float], ...] = (
    ("H200", "bfloat16", 989.4e12),
    ("H100", "bfloat16", 989.4e12),
    ("A100", "bfloat16", 312e12),
    ("H200", "float32", 66.9e12),
    ("H100", "float32", 66.9e12),
    ("A100", "float32", 19.5e12),
)


def peak_flops(device_name: str, dtype: str) -> float | None:
    """The peak used for MFU, or None where unknown (every CPU)."""
    for key, kind, peak in _PEAKS:
        if key in device_name and kind == dtype:
            return peak
    return None
