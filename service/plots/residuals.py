"""Residuals: log(predicted / observed loss) per run vs compute, outliers highlighted."""

from __future__ import annotations

import numpy as np

from service.plots.common import (
    AXIS_FLOPS,
    log_axis,
    new_figure,
    predicted_loss,
    set_title,
    title,
    to_svg,
)
from service.scaling import FitResult, RunArrays


def render_residuals(result: FitResult, runs: RunArrays) -> bytes:
    fig, (ax,) = new_figure(9.0, 4.8)
    pred, what = predicted_loss(result, runs)
    ok = np.isfinite(pred)
    r = np.full(len(runs), np.nan)
    r[ok] = np.log(pred[ok] / runs.loss[ok])
    if result.rmse_log_loss is not None and result.rmse_log_loss > 0:
        s = result.rmse_log_loss
        ax.axhspan(-s, s, color="tab:blue", alpha=0.1, lw=0, label=f"±RMSE ({s:.3g})").set_gid(
            "rmse"
        )
    ax.axhline(0.0, color="black", lw=1, label="zero: prediction = observation").set_gid("zero")
    shown = np.flatnonzero(ok)
    ax.scatter(
        runs.flops[shown], r[shown], s=12, color="tab:blue", alpha=0.8, label="runs", zorder=3
    ).set_gid("runs")
    out = np.array([i for i in result.outliers if 0 <= i < len(runs) and ok[i]], dtype=np.int64)
    if out.size:
        ax.scatter(
            runs.flops[out],
            r[out],
            s=70,
            facecolors="none",
            edgecolors="tab:red",
            linewidths=1.5,
            label=f"outliers, robust |z| > 4 ({out.size})",
            zorder=4,
        ).set_gid("outlier")
    missing = len(runs) - shown.size
    if missing:
        ax.text(
            0.01,
            0.01,
            f"{missing} run(s) without a prediction (budgets the fit skipped) not shown",
            transform=ax.transAxes,
            fontsize=7,
        ).set_gid("not-shown")
    log_axis(ax, "x", float(runs.flops.min()), float(runs.flops.max()))
    ax.set_xlabel(AXIS_FLOPS)
    ax.set_ylabel(f"log(predicted / observed loss)\npredicted by the {what}")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    set_title(fig, title(result, "Residuals"))
    return to_svg(fig)
