"""Benchmark the run planner against a Chinchilla-style IsoFLOP grid on a simulated executor.

    PYTHONPATH=. python bench/planner.py [--seeds 20] [--noise 0.01] [--target 1e24]
        [--max-per-run 1e22] [--prior epoch-2024] [--batch 6] [--overhead 0] [--rounds 40]

Ground truth: the epoch-2024 law; each run's loss is simulate_loss (log-normal, ``--noise``).
(a) planner: seed design (plan_runs with no fit), then active rounds of ``--batch`` runs, refit
    with the core's ``fit`` (parametric, Huber) after every batch, experiment budget = the grid's
    total compute, at most ``--rounds`` rounds; ``--overhead``: a per-run cost in FLOPs added in
    the planner's score (fewer, larger runs).
(b) grid: 5 budgets a decade apart ending at ``--max-per-run``, 9 sizes each,
    log-spaced over N_opt(C)/4 .. 4 N_opt(C) of the same prior, fitted the same way; its compute
    curve adds budgets from the smallest up. Error: |log N_opt(target) fitted / true|.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

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
from service.scaling.design_info import log_nopt


def log_err(law: object, truth: Chinchilla, target: float) -> float:
    assert isinstance(law, Chinchilla)
    return abs(log_nopt(law, target) - log_nopt(truth, target))


def grid_runs(prior: Chinchilla, budgets: np.ndarray, n_sizes: int = 9) -> tuple[np.ndarray, ...]:
    N, D = [], []
    for C in budgets:
        n_opt = optimum_at_flops(prior, float(C), Constraints()).params
        for x in np.linspace(-np.log(4.0), np.log(4.0), n_sizes):
            N.append(n_opt * np.exp(x))
            D.append(C / (6.0 * N[-1]))
    return np.array(N), np.array(D)


def run_grid(truth, prior, budgets, target, noise, rng):  # type: ignore[no-untyped-def]
    """(compute, error) after the first k budgets, k = 3..len(budgets)."""
    N, D = grid_runs(prior, budgets)
    L = simulate_loss(truth, N, D, noise, rng)
    out = []
    for k in range(3, budgets.size + 1):
        m = 9 * k
        runs = RunArrays.from_arrays(N[:m], D[:m], L[:m])
        try:
            err = log_err(fit(runs, holdout=False).law, truth, target)
        except ScalingError:
            err = np.inf
        out.append((float(runs.flops.sum()), err))
    return out


def run_planner(truth, prior, budget, per_run, target, noise, batch, rng, max_rounds, overhead):  # type: ignore[no-untyped-def]
    """(compute spent, error) after every refit."""
    N = np.empty(0)
    D = np.empty(0)
    L = np.empty(0)
    result = None
    spent = 0.0
    trace: list[tuple[float, float, int]] = []
    for _ in range(max_rounds):
        runs = RunArrays.from_arrays(N, D, L)
        plan = plan_runs(
            runs,
            result,
            target,
            budget - spent,
            per_run,
            batch_size=batch,
            prior=prior,
            overhead_flops=overhead,
        )
        if not plan.runs:
            break
        n = np.array([r.params for r in plan.runs])
        d = np.array([r.tokens for r in plan.runs])
        N, D = np.r_[N, n], np.r_[D, d]
        L = np.r_[L, simulate_loss(truth, n, d, noise, rng)]
        spent += plan.total_flops
        try:
            result = fit(RunArrays.from_arrays(N, D, L), holdout=False)
            trace.append((spent, log_err(result.law, truth, target), N.size))
        except ScalingError:
            trace.append((spent, trace[-1][1] if trace else np.inf, N.size))
    return trace


def at(trace: list[tuple[float, float, int]], compute: float) -> tuple[float, float, int]:
    """(error, compute spent, runs) of the last refit within ``compute``."""
    rows = [row for row in trace if row[0] <= compute * (1 + 1e-9)]
    return (rows[-1][1], rows[-1][0], rows[-1][2]) if rows else (np.inf, 0.0, 0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--noise", type=float, default=0.01)
    ap.add_argument("--target", type=float, default=1e24)
    ap.add_argument("--max-per-run", type=float, default=1e22)
    ap.add_argument("--prior", default="epoch-2024")
    ap.add_argument("--batch", type=int, default=6)
    ap.add_argument("--overhead", type=float, default=0.0, help="per-run FLOPs in the score")
    ap.add_argument("--rounds", type=int, default=40)
    args = ap.parse_args()
    truth = preset("epoch-2024").law
    prior = preset(args.prior).law
    assert isinstance(truth, Chinchilla)
    assert isinstance(prior, Chinchilla)
    budgets = args.max_per_run * 10.0 ** np.arange(-4.0, 1.0)
    t0 = time.perf_counter()
    grids, traces = [], []
    for s in range(args.seeds):
        g = run_grid(truth, prior, budgets, args.target, args.noise, np.random.default_rng(s))
        grids.append(g)
        total = g[-1][0]
        traces.append(
            run_planner(
                truth,
                prior,
                total,
                args.max_per_run,
                args.target,
                args.noise,
                args.batch,
                np.random.default_rng(10_000 + s),
                args.rounds,
                args.overhead,
            )
        )
    elapsed = time.perf_counter() - t0
    grid_total = grids[0][-1][0]
    print(
        f"truth epoch-2024, prior {args.prior}, noise {args.noise:g}, target {args.target:.3g} "
        f"FLOPs, max per run {args.max_per_run:.3g}, {args.seeds} seeds, {elapsed:.1f} s"
    )
    print(
        f"{'method':<22}{'compute <=':>11}{'frac':>7}{'spent':>10}{'runs':>6}"
        f"{'median':>9}{'p90':>8}"
    )
    for k in range(len(grids[0])):
        c = grids[0][k][0]
        e = np.array([g[k][1] for g in grids])
        name = f"grid {k + 3} budgets x 9"
        print(
            f"{name:<22}{c:>11.3g}{c / grid_total:>7.3f}{c:>10.3g}{9 * (k + 3):>6d}"
            f"{np.median(e):>9.3f}{np.percentile(e, 90):>8.3f}"
        )
    grid_med = float(np.median([g[-1][1] for g in grids]))
    fracs = [0.03, 0.05, 0.1, 0.15, 0.2, 0.25, 0.33, 0.5, 0.75, 1.0]
    for f in fracs:
        rows = [at(t, f * grid_total) for t in traces]
        e = np.array([r[0] for r in rows])
        spent = np.median([r[1] for r in rows])
        n = int(np.median([r[2] for r in rows]))
        if not np.isfinite(np.median(e)):
            print(f"{'planner':<22}{f * grid_total:>11.3g}{f:>7.3f}  (seed not finished: no fit)")
            continue
        print(
            f"{'planner':<22}{f * grid_total:>11.3g}{f:>7.3f}{spent:>10.3g}{n:>6d}"
            f"{np.median(e):>9.3f}{np.percentile(e, 90):>8.3f}"
        )
    fine = np.geomspace(0.01, 1.0, 200)
    meds = [np.median([at(t, f * grid_total)[0] for t in traces]) for f in fine]
    # The least compute from which on the planner's median stays at or below the grid's.
    above = [i for i, m in enumerate(meds) if m > grid_med]
    start = above[-1] + 1 if above else 0
    hit = list(fine[start:])
    need = (
        f"{hit[0]:.3f} of the grid's compute ({hit[0] * grid_total:.3g} FLOPs)"
        if hit
        else "not reached"
    )
    print(f"grid median |log error| {grid_med:.3f}; planner reaches it with {need}")


if __name__ == "__main__":
    main()
