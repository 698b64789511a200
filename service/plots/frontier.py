"""The compute-optimal frontier: N_opt(C) and D_opt(C), bootstrap bands, the runs."""

from __future__ import annotations

import numpy as np

from service.plots.common import (
    AXIS_FLOPS,
    AXIS_PARAMS,
    AXIS_TOKENS,
    FloatArray,
    log_axis,
    new_figure,
    params_opt,
    set_title,
    title,
    to_svg,
    tokens_opt,
)
from service.scaling import DataConstrained, FitResult, Frontier, Kaplan, RunArrays
from service.scaling.result import Source

# The fitted lines start this factor below the smallest run and end this factor above the largest.
BELOW, BEYOND = 3.0, 100.0
BAND = (5.0, 95.0)


def _band(result: FitResult, C: FloatArray) -> tuple[FloatArray, FloatArray] | None:
    """Bootstrap percentile bands of N_opt(C) and D_opt(C) as (2, len(C)) arrays, or None."""
    laws = result.sample_laws()
    if not laws:
        return None
    with np.errstate(all="ignore"):
        NS = np.stack([params_opt(s, C) for s in laws])
        DS = np.stack([tokens_opt(s, C) for s in laws])
    NS[~np.isfinite(NS) | (NS <= 0)] = np.nan
    DS[~np.isfinite(DS) | (DS <= 0)] = np.nan
    if np.isnan(NS).all() or np.isnan(DS).all():
        return None
    return (
        np.asarray(np.nanpercentile(NS, BAND, axis=0)),
        np.asarray(np.nanpercentile(DS, BAND, axis=0)),
    )


def _exponent(law: Source, which: str) -> float:
    """Exponent of N_opt ~ C^a (params) or D_opt ~ C^b (tokens)."""
    if isinstance(law, Frontier):
        return law.a if which == "params" else law.b
    if isinstance(law, DataConstrained):
        law = law.base
    a = 1.0 / (law.alpha_N / law.alpha_D + 1.0) if isinstance(law, Kaplan) else law.a
    return a if which == "params" else 1.0 - a


def render_frontier(result: FitResult, runs: RunArrays) -> bytes:
    fig, (ax_n, ax_d) = new_figure(11.0, 4.8, ncols=2)
    law = result.law
    c_max = max(float(runs.flops.max()), result.max_flops)
    C = np.geomspace(float(runs.flops.min()) / BELOW, c_max * BEYOND, 120)
    band = _band(result, C)
    fitted = (params_opt(law, C), tokens_opt(law, C))
    points = (runs.params, runs.tokens)
    minima = (
        np.array([m.params_opt for m in result.budgets]),
        np.array([m.flops / (6.0 * m.params_opt) for m in result.budgets]),
    )
    note = " (no data repetition)" if isinstance(law, DataConstrained) else ""
    panels = ((ax_n, "params", "N", AXIS_PARAMS), (ax_d, "tokens", "D", AXIS_TOKENS))
    for j, (ax, which, sym, axis) in enumerate(panels):
        ax.axvspan(c_max, C[-1], color="0.93", zorder=0, label="beyond the data").set_gid(
            f"extrapolation-{which}"
        )
        if band is not None:
            n = len(result.bootstrap_samples)
            ax.fill_between(
                C,
                band[j][0],
                band[j][1],
                color="tab:blue",
                alpha=0.25,
                lw=0,
                label=f"bootstrap {BAND[0]:g}–{BAND[1]:g}% ({n} resamples)",
            ).set_gid(f"band-{which}")
        ax.plot(
            C,
            fitted[j],
            color="tab:blue",
            lw=1.8,
            label=f"fit: {sym}_opt ∝ C^{_exponent(law, which):.3f}{note}",
        )[0].set_gid(f"fit-{which}")
        ax.scatter(runs.flops, points[j], s=8, color="0.45", alpha=0.7, label="runs").set_gid(
            f"runs-{which}"
        )
        if result.budgets:
            ax.scatter(
                [m.flops for m in result.budgets],
                minima[j],
                marker="*",
                s=90,
                color="tab:red",
                zorder=4,
                label="IsoFLOP minima",
            ).set_gid(f"optimum-{which}")
        log_axis(ax, "x", float(C[0]), float(C[-1]))
        log_axis(ax, "y", float(np.nanmin(fitted[j])), float(np.nanmax(fitted[j])))
        ax.set_xlabel(AXIS_FLOPS)
        ax.set_ylabel("compute-optimal " + axis)
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize=7, loc="upper left")
    set_title(fig, title(result, "Compute-optimal frontier"))
    return to_svg(fig)
