"""Time render_plot on Chinchilla's 240 runs (Epoch's extraction): best and median of 5 renders
per kind, for a parametric fit with 1000 bootstrap resamples and an IsoFLOP fit with 200.

    PYTHONPATH=. python bench/plots.py
"""

from __future__ import annotations

import time
from pathlib import Path

from service.io.runs_csv import parse_runs_csv
from service.plots import PLOT_KINDS, render_plot
from service.scaling import fit

DATA = Path(__file__).resolve().parents[1] / "examples" / "data"
EPOCH_MAX_LOSS = 3.446995  # Epoch's reference refit drops the 5 highest-loss rows


def main() -> None:
    text = (DATA / "epoch_chinchilla_svg_extracted_data.csv").read_text()
    runs = parse_runs_csv(text, max_loss=EPOCH_MAX_LOSS).to_runs()
    for method, boot in (("parametric", 1000), ("isoflop", 200)):
        res = fit(runs, method=method, bootstrap=boot, seed=0)
        for kind in PLOT_KINDS:
            times = []
            for _ in range(5):
                t0 = time.perf_counter()
                svg = render_plot(kind, res, runs)
                times.append(time.perf_counter() - t0)
            times.sort()
            print(
                f"{len(runs)} runs {method:10s} boot={boot:<4d} {kind:9s} "
                f"best {times[0] * 1e3:4.0f} ms  median {times[2] * 1e3:4.0f} ms  "
                f"{len(svg) // 1024} KiB"
            )


if __name__ == "__main__":
    main()
