"""The fixed cost of one training run as FLOP-equivalents: the planner's per-run overhead.

A run costs more than its 6 N D: the trainer sets up (corpus, model, optimizer), compiles on a
GPU, and evaluates at the end, whatever the run's size. Charged as FLOPs, that is the seconds
it takes times the FLOP rate the same hardware trains at. The defaults below are measured with
this repository's trainer (files under ``bench/results/``); they leave out the process start
(Python and torch imports) and the worker's scheduling, which the trainer does not time, so
they are lower bounds.

FLOPs are 6 N D with N the total parameters (tied head counted once), as the planner counts.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RunOverhead:
    """seconds: a run's fixed time; flops_per_s: the training rate (6 N D per second) of the
    hardware that run holds; source: where the numbers come from."""

    seconds: float
    flops_per_s: float
    source: str

    @property
    def flops(self) -> float:
        return self.seconds * self.flops_per_s


# Start-up + evaluation: 3.07 s, the median of wall_time_s - train_time_s over the 28 finished
# runs of the H200 IsoFLOP sweep (bench/results/trainer_gpu_h200/sweep.jsonl); compilation:
# 15.8 s, the compiled trainer's fixed time at 25.3M params minus the eager one's in the same
# run (bench/results/trainer_gpu_h200_2026-11-29/run2_25m_shipped: 23 steps in 19.85 s vs
# 4.69 s, less the steps at their measured speed); rate: the compiled trainer at 25.3M params,
# 1.964M tokens/s x 6 x 25.31M = 2.98e14 FLOP/s. Total 18.9 s x 2.98e14 = 5.6e15 FLOPs.
H200_RUN_OVERHEAD = RunOverhead(
    seconds=3.07 + 15.8,
    flops_per_s=2.98e14,
    source="trainer on one H200: start-up + evaluation 3.07 s, compile 15.8 s, at 2.98e14 FLOP/s",
)

# Start-up + evaluation: 3.83 s, the median of wall_time_s - train_time_s over the 20 runs of
# the CPU sweep (bench/results/trainer_cpu_sweep/sweep.jsonl, no compilation on a CPU); rate:
# the median 6ND rate of those runs, 1.89e10 FLOP/s. Total 7.2e10 FLOPs.
CPU_RUN_OVERHEAD = RunOverhead(
    seconds=3.83,
    flops_per_s=1.89e10,
    source="trainer on a CPU: start-up + evaluation 3.83 s at 1.89e10 FLOP/s",
)


def default_overhead(device: str) -> RunOverhead:
    """The measured overhead of the trainer's ``device`` ("cpu", "cuda[:i]", "mps" or "auto"):
    the CPU's for "cpu", else the H200's (the GPU the trainer was measured on)."""
    return CPU_RUN_OVERHEAD if device.split(":")[0] == "cpu" else H200_RUN_OVERHEAD
