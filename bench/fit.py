"""Benchmark the Approach-3 fit on Chinchilla's 240 runs against the paper's method and the
`chinchilla` package (kyo-takano), all in one run; prints time, ratio and objective.

    PYTHONPATH=. python bench/fit.py [--starts 200] [--full-grid] [--boot 4000]
        [--package-python PYTHON] [--package-starts 0]

Baselines are measured here, in the same run:
- paper: scipy L-BFGS-B (finite-difference gradient, as in Epoch's replication) on the summed
  Huber objective from the 4500-start grid; by default a seeded random subset of ``--starts``
  starts is timed and the time scaled up to 4500 (``--full-grid`` runs all of them).
- package: `chinchilla.Chinchilla(...).fit()` with its default loss (asymmetric MAE) over the same
  4500-start grid, run in a separate virtualenv; its parameters are scored with our objective.
- bootstrap: Epoch-style refits (one L-BFGS-B per resample from the full-data optimum), timed on
  a subset and scaled to ``--boot`` resamples, vs our batched Newton refits.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
from scipy.optimize import minimize

from service.io.runs_csv import parse_runs_csv
from service.scaling import fit
from service.scaling.fit_parametric import bootstrap_refits, global_fit, newton_polish
from service.scaling.objective import chinchilla_objective

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "examples" / "data" / "epoch_chinchilla_svg_extracted_data.csv"
MAX_LOSS = 3.446995  # Epoch drop the 5 highest-loss rows
DELTA = 1e-3


def paper_grid() -> np.ndarray:
    g = np.meshgrid(
        np.arange(0, 30, 5.0),
        np.arange(0, 30, 5.0),
        np.arange(-1, 1.5, 0.5),
        np.arange(0, 2.5, 0.5),
        np.arange(0, 2.5, 0.5),
        indexing="ij",
    )
    return np.stack([x.ravel() for x in g], axis=1)  # (a, b, e, alpha, beta)


def timed(fn, repeat: int = 1):  # type: ignore[no-untyped-def]
    best, out = np.inf, None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


PACKAGE_SCRIPT = textwrap.dedent(
    """
    import json, sys, time, itertools
    import numpy as np
    from chinchilla import Chinchilla
    project, n_starts = sys.argv[1], int(sys.argv[2])
    grid = dict(e=np.arange(-1, 1.5, 0.5), a=np.arange(0, 30, 5.0), b=np.arange(0, 30, 5.0),
                alpha=np.arange(0, 2.5, 0.5), beta=np.arange(0, 2.5, 0.5))
    if n_starts:
        # Subsample along the first axes only where asked; the default is the full grid.
        rng = np.random.default_rng(0)
        keep = max(1, round(len(grid["a"]) * n_starts / 4500))
        grid["a"] = np.sort(rng.choice(grid["a"], keep, replace=False))
    cc = Chinchilla(project, param_grid=grid, log_level=40)
    n = int(np.prod([len(v) for v in grid.values()]))
    t = time.perf_counter()
    cc.fit()
    dt = time.perf_counter() - t
    print(json.dumps({"seconds": dt, "starts": n, "params": cc.get_params()}))
    """
)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--starts", type=int, default=200, help="paper-grid starts to time")
    ap.add_argument("--full-grid", action="store_true")
    ap.add_argument("--boot", type=int, default=4000)
    ap.add_argument("--boot-baseline", type=int, default=100, help="baseline refits to time")
    ap.add_argument(
        "--package-python",
        default=None,
        help="a Python with the `chinchilla` package installed: adds its fit as a baseline",
    )
    ap.add_argument("--package-starts", type=int, default=0, help="0: the full 4500 grid")
    args = ap.parse_args()

    runs = parse_runs_csv(DATA.read_text(), max_loss=MAX_LOSS).to_runs()
    ln, ld, L = np.log(runs.params), np.log(runs.tokens), runs.loss
    ll = np.log(L)
    print(f"data: {len(runs)} runs (Epoch's Chinchilla extraction, 5 highest-loss rows dropped)")
    print(f"cpus: {os.cpu_count()}")

    def objective(theta: np.ndarray) -> float:
        return float(chinchilla_objective(theta.reshape(1, 5), ln, ld, ll, DELTA)[0])

    rows: list[tuple[str, float, float, str]] = []

    # Ours: the core search alone, and the full fit() (validation, diagnostics, holdout refit).
    t_core, pol = timed(lambda: global_fit(ln, ld, L, DELTA), repeat=5)
    theta = pol.theta[0]
    t_fit, res = timed(lambda: fit(runs, holdout=False), repeat=5)
    rows.append(("ours: global_fit (grid prefit + batched Newton)", t_core, objective(theta), ""))
    rows.append(("ours: fit() incl. validation and diagnostics", t_fit, float(res.objective), ""))

    # The paper's method.
    grid = paper_grid()
    rng = np.random.default_rng(0)
    idx = np.arange(4500) if args.full_grid else rng.choice(4500, args.starts, replace=False)
    t0 = time.perf_counter()
    best = np.inf
    for x0 in grid[idx]:
        r = minimize(objective, x0, method="L-BFGS-B")
        best = min(best, float(r.fun))
    t_sub = time.perf_counter() - t0
    t_paper = t_sub * 4500 / idx.size
    note = "measured" if args.full_grid else f"{idx.size} random starts timed, scaled to 4500"
    rows.append(("paper: L-BFGS-B from the 4500-start grid", t_paper, best, note))

    # The chinchilla package, in its own virtualenv.
    py = Path(args.package_python) if args.package_python else None
    if py is not None and py.exists():
        with tempfile.TemporaryDirectory() as project:
            C = 6.0 * runs.params * runs.tokens
            lines = ["C,N,D,loss"] + [
                f"{float(c)!r},{float(n)!r},{float(d)!r},{float(loss)!r}"
                for c, n, d, loss in zip(C, runs.params, runs.tokens, L, strict=True)
            ]
            (Path(project) / "df.csv").write_text("\n".join(lines) + "\n")
            out = subprocess.run(
                [str(py), "-c", PACKAGE_SCRIPT, project, str(args.package_starts)],
                capture_output=True,
                text=True,
                check=False,
            )
        if out.returncode == 0:
            info = json.loads(out.stdout.strip().splitlines()[-1])
            p = info["params"]
            th = np.array([np.log(p["A"]), np.log(p["B"]), np.log(p["E"]), p["alpha"], p["beta"]])
            secs = info["seconds"] * 4500 / info["starts"]
            note = f"its default loss (asymmetric MAE); {info['starts']} starts"
            if info["starts"] != 4500:
                note += ", scaled to 4500"
            rows.append(("chinchilla package (kyo-takano) fit()", secs, objective(th), note))
        else:
            print("chinchilla package failed:", out.stderr.strip().splitlines()[-1:])
    else:
        print(f"chinchilla package not benchmarked: {py} not found")

    print()
    print(f"{'method':52s} {'seconds':>10s} {'vs ours':>9s} {'objective':>12s}  notes")
    for name, secs, obj, note in rows:
        print(f"{name:52s} {secs:10.4f} {secs / t_core:8.0f}x {obj:12.8f}  {note}")

    # Bootstrap.
    n = len(runs)
    counts = np.random.default_rng(0).multinomial(n, np.full(n, 1.0 / n), size=args.boot)
    t_boot, boot = timed(lambda: bootstrap_refits(theta, ln, ld, L, DELTA, counts))
    t_one, _ = timed(lambda: bootstrap_refits(theta, ln, ld, L, DELTA, counts, workers=1))
    # Round one's refit scheme (every resample in one thread, the best of all seven step lengths
    # at every Newton iteration) on today's objective code: what the line search and the
    # threads gain. The same answers means the same 95% intervals.
    t_old, old = timed(lambda: _round_one_refits(theta, ln, ld, ll, counts))
    k = min(args.boot_baseline, args.boot)
    t0 = time.perf_counter()
    base_obj = []
    for c in counts[:k]:
        w = c.astype(float)

        def f(x: np.ndarray, w: np.ndarray = w) -> float:
            return float(
                chinchilla_objective(x.reshape(1, 5), ln, ld, ll, DELTA, weights=w[None])[0]
            )

        base_obj.append(minimize(f, theta, method="L-BFGS-B").fun)
    t_base = (time.perf_counter() - t0) * args.boot / k
    worse = np.mean(boot.objective[:k] <= np.array(base_obj) * (1 + 1e-9))
    print()
    print(f"bootstrap, {args.boot} refits:")
    print(f"  ours (batched Newton, warm start)   {t_boot:8.3f} s")
    print(
        f"  baseline (L-BFGS-B per resample)    {t_base:8.3f} s  ({k} timed, scaled)  "
        f"ratio {t_base / t_boot:.0f}x"
    )
    print(f"  our objective <= baseline's in {worse:.0%} of the {k} compared resamples")
    print(f"  converged: {boot.converged.mean():.1%}")
    print(f"  ours on one thread                  {t_one:8.3f} s")
    print(
        f"  round one's scheme (one thread, best of 7 steps) {t_old:8.3f} s  "
        f"ratio {t_old / t_boot:.1f}x"
    )
    lo_hi = [np.percentile(_values(x.theta), [2.5, 97.5], axis=0) for x in (boot, old)]
    rel = np.max(np.abs(lo_hi[0] - lo_hi[1]) / np.abs(lo_hi[1]))
    print(
        "  95% intervals of (E, A, B, alpha, beta) vs round one's: "
        f"max relative difference {rel:.1e}"
    )


def _values(theta: np.ndarray) -> np.ndarray:
    return np.stack(
        [np.exp(theta[:, 2]), np.exp(theta[:, 0]), np.exp(theta[:, 1]), theta[:, 3], theta[:, 4]], 1
    )


def _round_one_refits(  # type: ignore[no-untyped-def]
    theta: np.ndarray, ln: np.ndarray, ld: np.ndarray, ll: np.ndarray, counts: np.ndarray
):
    starts = np.repeat(theta.reshape(1, 5), counts.shape[0], axis=0)
    return newton_polish(starts, ln, ld, ll, DELTA, weights=counts.astype(float))


if __name__ == "__main__":
    main()
