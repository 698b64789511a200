"""Benchmark the run planner against a Chinchilla-style IsoFLOP grid on a simulated executor,
every run charged its FLOPs plus a fixed per-run overhead.

    PYTHONPATH=. python bench/planner.py [--seeds 20] [--noise 0.01] [--target 1e24]
        [--max-per-run 1e22] [--prior epoch-2024] [--batch 6] [--rounds 40]
        [--overhead-s 18.87 --flops-per-s 2.98e14 | --overhead-flops F]
        [--max-branches 3] [--trunk-correlation 0.5] [--cooldown-fraction 0.2] [--max-runs 45]
        [--jobs 2]

Ground truth: the epoch-2024 law; each run's loss is simulate_loss (log-normal, ``--noise``).
Cost of a run, for both methods: 6 N D + the overhead (start-up, evaluation, scheduling as
FLOP-equivalents: seconds x the rate of the hardware the runs train on; see
``service/scaling/overhead.py`` for the defaults measured from the trainer).
(a) baseline grid: 5 budgets a decade apart ending at ``--max-per-run``, 9 sizes each, log-spaced
    over N_opt(C)/4 .. 4 N_opt(C) of the prior, fitted with the core's ``fit`` (parametric,
    Huber). Partial grids, ordered fairly: the same 5 x 9 design scaled down so that it costs a
    fraction of the full grid (what one would run with less compute: the largest budget is
    never the one left out), and, for reference, the old prefixes from the smallest budget up.
(b) planner: seed design (plan_runs with no fit), then active rounds of ``--batch`` runs, refit
    after every batch, the same overhead in its objective and in its budget; experiment budget =
    the full grid's cost, and at most ``--max-runs`` training runs (default the grid's 45: the
    grid's resources, compute and runs; ``plan_runs(max_runs=...)`` then charges each run the
    budget left per run left, so it plans fewer, larger runs; 0: no cap); at most ``--rounds``
    rounds; every run one cosine run (one point).
(c) planner with several-point runs: as (b), but an active run may be a constant-LR trunk with
    up to ``--max-branches`` cooldown branches (D/4, D/2, D), chosen against one-point runs by
    information per FLOP. It costs what the trainer trains, 6 N (Dk + f sum_{i<k} Di) with
    f = ``--cooldown-fraction``, plus one overhead; its points' losses are the law's with
    log-noise of the same size, a ``--trunk-correlation`` share of its variance shared by the
    trunk (``service/scaling/branches.py``), which the planner assumes too. Seeds: (b) and (c)
    draw from the same generator seed.
(a), (b) and (c) share the noise level. The summary gives, for (b) and (c), the least cost from
which the median error stays at or below the full grid's, and the compute ratio (b) / (c) at
that equal median error. Seeds run in ``--jobs`` processes.
Error: |log N_opt(target) fitted / true|, natural log; medians and p90 over the seeds.
"""

from __future__ import annotations

import argparse
import multiprocessing
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from service.scaling import (
    Chinchilla,
    RunArrays,
    ScalingError,
    fit,
    plan_runs,
    preset,
    simulate_loss,
)
from service.scaling.allocate import Constraints, optimum_at_flops
from service.scaling.branches import (
    COOLDOWN_FRACTION,
    TRUNK_CORRELATION,
    simulate_trunk_losses,
)
from service.scaling.design_info import log_nopt
from service.scaling.overhead import H200_RUN_OVERHEAD

FloatArray = NDArray[np.float64]
GRID_SIZES = 9
GRID_BUDGETS = 5
# Fractions of the full grid's cost at which the scaled-down grids and the planner are reported.
FRACTIONS = (0.05, 0.1, 0.2, 1 / 3, 0.5, 1.0)
TARGET_FRACTION = 1 / 3


def log_err(law: object, truth: Chinchilla, target: float) -> float:
    assert isinstance(law, Chinchilla)
    return abs(log_nopt(law, target) - log_nopt(truth, target))


def grid_design(prior: Chinchilla, budgets: FloatArray) -> tuple[FloatArray, FloatArray]:
    N, D = [], []
    for C in budgets:
        n_opt = optimum_at_flops(prior, float(C), Constraints()).params
        for x in np.linspace(-np.log(4.0), np.log(4.0), GRID_SIZES):
            N.append(n_opt * np.exp(x))
            D.append(C / (6.0 * N[-1]))
    return np.array(N), np.array(D)


def grid_cost(budgets: FloatArray, overhead: float) -> float:
    return float(GRID_SIZES * (budgets + overhead).sum())


def fit_error(
    N: FloatArray, D: FloatArray, L: FloatArray, truth: Chinchilla, target: float
) -> float:
    try:
        return log_err(fit(RunArrays.from_arrays(N, D, L), holdout=False).law, truth, target)
    except ScalingError:
        return float("inf")


@dataclass(frozen=True)
class Point:
    cost: float  # FLOPs + runs x overhead
    error: float
    runs: int


def run_grid(
    truth: Chinchilla,
    prior: Chinchilla,
    budgets: FloatArray,
    target: float,
    noise: float,
    overhead: float,
    seed: int,
) -> tuple[list[Point], list[Point]]:
    """(the full grid scaled to cost each fraction, prefixes from the smallest budget up); the
    full grid draws from ``default_rng(seed)``, each scaled one from its own generator."""
    rng = np.random.default_rng(seed)
    full = grid_cost(budgets, overhead)
    N, D = grid_design(prior, budgets)
    L = simulate_loss(truth, N, D, noise, rng)
    prefixes = []
    for k in range(3, budgets.size + 1):
        m = GRID_SIZES * k
        cost = grid_cost(budgets[:k], overhead)
        prefixes.append(Point(cost, fit_error(N[:m], D[:m], L[:m], truth, target), m))
    scaled = []
    for i, f in enumerate(FRACTIONS):
        if f == 1.0:  # the full grid itself: the baseline
            scaled.append(prefixes[-1])
            continue
        # The scale s with 9 sum(s b + overhead) = f x full: the same design, shifted down.
        s = (f * full / GRID_SIZES - budgets.size * overhead) / budgets.sum()
        if s <= 0:
            scaled.append(Point(f * full, float("inf"), 0))
            continue
        n, d = grid_design(prior, s * budgets)
        loss = simulate_loss(truth, n, d, noise, np.random.default_rng([seed, i]))
        scaled.append(
            Point(grid_cost(s * budgets, overhead), fit_error(n, d, loss, truth, target), n.size)
        )
    return scaled, prefixes


def run_planner(
    truth: Chinchilla,
    prior: Chinchilla,
    budget: float,
    args: argparse.Namespace,
    overhead: float,
    rng: np.random.Generator,
    max_branches: int = 1,
) -> list[Point]:
    """A point after every refit: cost spent (FLOPs as trained + runs x overhead), error, runs
    (training runs: a run with several points counts once). ``max_branches`` > 1: active runs
    may be trunks with cooldown branches, their points' losses drawn with trunk-correlated noise
    (``simulate_trunk_losses``, correlation ``--trunk-correlation``); the planner assumes the
    same correlation. Stops once it has spent ``--stop-fraction`` of ``budget`` or trained
    ``--max-runs`` runs."""
    N = np.empty(0)
    D = np.empty(0)
    L = np.empty(0)
    G = np.empty(0, dtype=np.int64)  # trunk of each point
    result = None
    spent = 0.0
    trained = 0
    trace: list[Point] = []
    for _ in range(args.rounds):
        if spent >= args.stop_fraction * budget or (args.max_runs and trained >= args.max_runs):
            break
        runs = RunArrays.from_arrays(N, D, L, groups=G)
        try:
            plan = plan_runs(
                runs,
                result,
                args.target,
                budget - spent,
                args.max_per_run,
                batch_size=args.batch,
                prior=prior,
                overhead_flops=overhead,
                max_branches=max_branches,
                cooldown_fraction=args.cooldown_fraction,
                trunk_correlation=args.trunk_correlation,
                max_runs=args.max_runs - trained if args.max_runs else None,
            )
        except ScalingError:
            break
        if not plan.runs:
            break
        for run in plan.runs:
            points = np.array(run.branch_tokens or (run.tokens,))
            if points.size > 1:
                loss = simulate_trunk_losses(
                    truth, run.params, points, args.noise, args.trunk_correlation, rng
                )
            else:
                loss = simulate_loss(truth, [run.params], points, args.noise, rng)
            N = np.r_[N, np.full(points.size, run.params)]
            D, L = np.r_[D, points], np.r_[L, loss]
            G = np.r_[G, np.full(points.size, trained)]
            trained += 1
        spent += plan.cost_flops
        try:
            result = fit(RunArrays.from_arrays(N, D, L, groups=G), holdout=False)
            trace.append(Point(spent, log_err(result.law, truth, args.target), trained))
        except ScalingError:
            trace.append(Point(spent, trace[-1].error if trace else float("inf"), trained))
    return trace


def at(trace: list[Point], cost: float) -> Point:
    """The last refit within ``cost`` (no fit yet: infinite error)."""
    rows = [p for p in trace if p.cost <= cost * (1 + 1e-9)]
    return rows[-1] if rows else Point(0.0, float("inf"), 0)


def row(name: str, frac: float, points: list[Point]) -> str:
    e = np.array([p.error for p in points])
    cost = float(np.median([p.cost for p in points]))
    runs = int(np.median([p.runs for p in points]))
    if not np.isfinite(np.median(e)):
        return f"{name:<30}{frac:>7.3f}{cost:>11.3g}{runs:>6d}   (no fit yet)"
    return (
        f"{name:<30}{frac:>7.3f}{cost:>11.3g}{runs:>6d}"
        f"{np.median(e):>9.3f}{np.percentile(e, 90):>8.3f}"
    )


def overhead_of(args: argparse.Namespace) -> tuple[float, str]:
    if args.overhead_flops is not None:
        return float(args.overhead_flops), "given (--overhead-flops)"
    seconds, rate = args.overhead_s, args.flops_per_s
    measured = seconds == H200_RUN_OVERHEAD.seconds and rate == H200_RUN_OVERHEAD.flops_per_s
    return seconds * rate, f"{seconds:.3g} s x {rate:.3g} FLOP/s" + (
        f" (measured: {H200_RUN_OVERHEAD.source})" if measured else ""
    )


def _seed(task: tuple[argparse.Namespace, float, int]) -> tuple[Any, Any, Any, Any]:
    args, overhead, s = task
    truth, prior = preset("epoch-2024").law, preset(args.prior).law
    assert isinstance(truth, Chinchilla) and isinstance(prior, Chinchilla)
    budgets = args.max_per_run * 10.0 ** np.arange(1.0 - GRID_BUDGETS, 1.0)
    full = grid_cost(budgets, overhead)
    scaled, pre = run_grid(truth, prior, budgets, args.target, args.noise, overhead, s)
    one = run_planner(truth, prior, full, args, overhead, np.random.default_rng(10_000 + s))
    several = run_planner(
        truth, prior, full, args, overhead, np.random.default_rng(10_000 + s), args.max_branches
    )
    return scaled, pre, one, several


def reaches(traces: list[list[Point]], level: float) -> tuple[float, float, float] | None:
    """(fraction of the full grid's cost, median runs, p90 error) from which on the median
    error stays at or below ``level``; None if it never does."""
    fine = np.geomspace(0.01, 1.0, 400)
    meds = [np.median([at(t, f).error for t in traces]) for f in fine]
    above = [i for i, m in enumerate(meds) if m > level]
    start = above[-1] + 1 if above else 0
    if start >= fine.size:
        return None
    pts = [at(t, float(fine[start])) for t in traces]
    runs = float(np.median([p.runs for p in pts]))
    return float(fine[start]), runs, float(np.percentile([p.error for p in pts], 90))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--noise", type=float, default=0.01)
    ap.add_argument("--target", type=float, default=1e24)
    ap.add_argument("--max-per-run", type=float, default=1e22)
    ap.add_argument("--prior", default="epoch-2024")
    ap.add_argument("--batch", type=int, default=6)
    ap.add_argument("--rounds", type=int, default=40)
    ap.add_argument("--overhead-flops", type=float, default=None, help="per-run cost, FLOPs")
    ap.add_argument(
        "--overhead-s", type=float, default=H200_RUN_OVERHEAD.seconds, help="fixed s per run"
    )
    ap.add_argument(
        "--flops-per-s",
        type=float,
        default=H200_RUN_OVERHEAD.flops_per_s,
        help="training rate of the hardware a run holds (6ND FLOP/s)",
    )
    ap.add_argument("--max-branches", type=int, default=3, help="points per run in (c)")
    ap.add_argument("--trunk-correlation", type=float, default=TRUNK_CORRELATION)
    ap.add_argument("--cooldown-fraction", type=float, default=COOLDOWN_FRACTION)
    ap.add_argument(
        "--stop-fraction", type=float, default=1.0, help="planners stop past this cost share"
    )
    ap.add_argument(
        "--max-runs",
        type=int,
        default=GRID_SIZES * GRID_BUDGETS,
        help="the planners' cap on training runs (default: the grid's; 0: no cap)",
    )
    ap.add_argument("--jobs", type=int, default=2, help="processes (seeds run in parallel)")
    args = ap.parse_args()
    overhead, how = overhead_of(args)
    budgets = args.max_per_run * 10.0 ** np.arange(1.0 - GRID_BUDGETS, 1.0)
    full = grid_cost(budgets, overhead)
    t0 = time.perf_counter()
    tasks = [(args, overhead, s) for s in range(args.seeds)]
    if args.jobs > 1:
        with multiprocessing.get_context("spawn").Pool(args.jobs) as pool:
            results = pool.map(_seed, tasks)
    else:
        results = [_seed(task) for task in tasks]
    grids = [r[0] for r in results]
    prefixes = [r[1] for r in results]
    # traces in fractions of the full grid's cost
    scale = [[Point(p.cost / full, p.error, p.runs) for p in r[2]] for r in results]
    branched = [[Point(p.cost / full, p.error, p.runs) for p in r[3]] for r in results]
    elapsed = time.perf_counter() - t0
    print(
        f"truth epoch-2024, prior {args.prior}, noise {args.noise:g}, target {args.target:.3g} "
        f"FLOPs, max per run {args.max_per_run:.3g}, {args.seeds} seeds, {elapsed:.1f} s "
        f"({args.jobs} processes)"
    )
    print(
        f"overhead per run {overhead:.3g} FLOPs: {how}; {overhead / budgets[0]:.2g} x the "
        "grid's smallest budget"
    )
    print(
        f"cost = FLOPs as trained + runs x overhead, every method; full grid {GRID_BUDGETS} "
        f"budgets x {GRID_SIZES} sizes = {full:.4g} FLOPs ({GRID_SIZES * GRID_BUDGETS} runs)"
    )
    print(
        f"several-point runs: at most {args.max_branches} points (cooldown branches at D/2^j), "
        f"cooldown fraction {args.cooldown_fraction:g}, trunk correlation "
        f"{args.trunk_correlation:g}"
    )
    cap = f"at most {args.max_runs} training runs" if args.max_runs else "no cap on runs"
    print(f"planners: the grid's compute as their budget, {cap} (--max-runs)")
    print(f"{'method':<30}{'frac':>7}{'cost':>11}{'runs':>6}{'median':>9}{'p90':>8}")
    for i, f in enumerate(FRACTIONS):
        print(row("grid scaled to the fraction", f, [g[i] for g in grids]))
    for k in range(len(prefixes[0])):
        pts = [p[k] for p in prefixes]
        print(row(f"grid, smallest {k + 3} budgets", pts[0].cost / full, pts))
    for name, traces in (("planner, one point", scale), ("planner, several points", branched)):
        for f in FRACTIONS:
            pts = [at(t, f) for t in traces]
            print(row(name, f, [Point(p.cost * full, p.error, p.runs) for p in pts]))
    grid_errors = [g[-1].error for g in grids]
    grid_med, grid_p90 = float(np.median(grid_errors)), float(np.percentile(grid_errors, 90))
    grid_runs = GRID_SIZES * GRID_BUDGETS
    print(
        f"baseline (full grid of cosine runs): median |log error| {grid_med:.3f}, p90 "
        f"{grid_p90:.3f}, {grid_runs} runs, {full:.3g} FLOPs"
    )
    for level, label in ((grid_med, "the baseline's median"), (grid_med / 2, "half of it")):
        reached: dict[str, float] = {}
        for name, traces in (("one-point", scale), ("several-point", branched)):
            hit = reaches(traces, level)
            if hit is None:
                print(f"planner, {name} runs: does not reach {label} ({level:.3f}) in the budget")
                continue
            frac, runs, p90 = hit
            reached[name] = frac
            print(
                f"planner, {name} runs: reaches {label} ({level:.3f}) at {frac:.3f} of the "
                f"grid's cost ({frac * full:.3g} FLOPs, {1 / frac:.1f}x less) with {runs:.0f} "
                f"training runs (median); p90 there {p90:.3f}"
            )
        if len(reached) == 2:
            print(
                f"several-point vs one-point runs at equal median error ({level:.3f}): "
                f"{reached['one-point'] / reached['several-point']:.2f}x less compute"
            )
    for name, traces in (("one-point", scale), ("several-point", branched)):
        errors = [at(t, TARGET_FRACTION).error for t in traces]
        print(
            f"at {TARGET_FRACTION:.3f} of the grid's cost, planner {name}: median "
            f"{np.median(errors):.3f}, p90 {np.percentile(errors, 90):.3f}"
        )


if __name__ == "__main__":
    main()
