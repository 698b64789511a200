"""The measured per-run overhead defaults, and the planner benchmark's accounting of it."""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from service.jobs.planning import overhead_flops
from service.scaling import preset
from service.scaling.overhead import CPU_RUN_OVERHEAD, H200_RUN_OVERHEAD, default_overhead


def test_defaults_are_the_documented_measurements() -> None:
    # seconds x rate, as derived in service/scaling/overhead.py from bench/results/.
    assert H200_RUN_OVERHEAD.flops == pytest.approx(18.87 * 2.98e14)
    assert H200_RUN_OVERHEAD.flops == pytest.approx(5.6e15, rel=0.01)
    assert CPU_RUN_OVERHEAD.flops == pytest.approx(7.2e10, rel=0.01)
    assert default_overhead("cpu") is CPU_RUN_OVERHEAD
    assert default_overhead("cuda:1") is H200_RUN_OVERHEAD


def test_a_plan_charges_the_trainer_devices_overhead_unless_given() -> None:
    assert overhead_flops(None, {"device": "cpu"}) == CPU_RUN_OVERHEAD.flops
    assert overhead_flops(None, {"device": "cuda:0"}) == H200_RUN_OVERHEAD.flops
    assert overhead_flops(None, {}) == 0.0  # "auto": the hardware is not known yet
    assert overhead_flops(None, {"device": "mps"}) == 0.0
    assert overhead_flops(3e9, {"device": "cuda"}) == 3e9


def _bench() -> ModuleType:
    path = Path(__file__).parents[2] / "bench" / "planner.py"
    spec = importlib.util.spec_from_file_location("bench_planner", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_bench_charges_every_run_its_overhead() -> None:
    bench = _bench()
    budgets = np.array([1e18, 1e19, 1e20])
    assert bench.grid_cost(budgets, 1e17) == pytest.approx(9 * (1.11e20 + 3e17))
    law = preset("epoch-2024").law
    args = argparse.Namespace(
        target=1e24,
        max_per_run=1e22,
        batch=6,
        noise=0.01,
        rounds=1,
        overhead_flops=None,
        stop_fraction=1.0,
        cooldown_fraction=bench.COOLDOWN_FRACTION,
        trunk_correlation=bench.TRUNK_CORRELATION,
        max_runs=0,
    )
    rng = np.random.default_rng(0)
    trace = bench.run_planner(law, law, 1e23, args, 1e20, rng)  # one round: the seed
    (point,) = trace
    seed = 5 * (1e19 + 1e20 + 1e21)
    assert point.runs == 15
    assert point.cost == pytest.approx(seed + 15 * 1e20, rel=0.01)
    # With the grid's run cap the planner stops once it has trained that many runs.
    args.rounds, args.max_runs = 5, 21
    capped = bench.run_planner(law, law, 1e23, args, 1e20, np.random.default_rng(0))
    assert [p.runs for p in capped] == [15, 21]
