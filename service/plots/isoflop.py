"""IsoFLOP profiles: loss vs parameters per compute budget, the fitted curves and optima."""

from __future__ import annotations

from typing import Any

import numpy as np

from service.plots.common import (
    AXIS_LOSS,
    AXIS_PARAMS,
    MAX_BUDGET_SERIES,
    BudgetGroup,
    FloatArray,
    budget_groups,
    fmt_flops,
    log_axis,
    new_figure,
    parabola,
    set_title,
    title,
    to_svg,
)
from service.scaling import Constraints, DataConstrained, FitResult, Frontier, RunArrays
from service.scaling.allocate import optimum_at_flops
from service.scaling.errors import ScalingError

# The curves extend this far (in ln N) beyond each budget's sampled sizes.
CURVE_MARGIN = 0.5
# An optimum further than this (in ln N) outside the sampled sizes is not drawn.
OPTIMUM_REACH = 3.0


def _law_curve(
    result: FitResult, runs: RunArrays, g: BudgetGroup
) -> tuple[FloatArray, FloatArray, tuple[float, float] | None] | None:
    """(N, L) along C = 6ND for this budget, and the budget's optimum (N, L) if drawable."""
    law = result.law
    log_n = np.log(runs.params[g.rows])
    lo, hi = float(log_n.min()) - CURVE_MARGIN, float(log_n.max()) + CURVE_MARGIN
    if isinstance(law, Frontier):
        coef = parabola(runs, g)
        if coef is None or g.minimum is None:
            return None
        x = np.linspace(lo, hi, 80)
        L = np.polyval(coef, x - np.log(g.minimum.params_opt))
        return np.exp(x), L, (g.minimum.params_opt, g.minimum.loss_opt)
    U: float | None = None
    if isinstance(law, DataConstrained) and runs.unique_tokens is not None:
        U = float(np.exp(np.log(runs.unique_tokens[g.rows]).mean()))
    best: tuple[float, float] | None = None
    try:
        pt = optimum_at_flops(law, g.flops, Constraints(unique_tokens=U))
    except ScalingError:
        pt = None
    if pt is not None and lo - OPTIMUM_REACH <= np.log(pt.params) <= hi + OPTIMUM_REACH:
        best = (pt.params, pt.loss)
        lo, hi = min(lo, np.log(pt.params) - 0.2), max(hi, np.log(pt.params) + 0.2)
    N = np.exp(np.linspace(lo, hi, 80))
    return N, law.predict(N, g.flops / (6.0 * N), unique_tokens=U), best


def render_isoflop(result: FitResult, runs: RunArrays) -> bytes:
    fig, (ax,) = new_figure(9.5, 5.2)
    groups = budget_groups(result, runs)
    # Points on loss curves (envelope fits) or very many budgets: colour by compute instead.
    if result.method == "envelope" or len(groups) > MAX_BUDGET_SERIES:
        _draw_many(ax, fig, result, runs)
        ax.legend(fontsize=7, loc="upper right")  # the colour bar sits outside
    else:
        _draw_budgets(ax, result, runs, groups)
        ncols = 1 if len(groups) <= 12 else 2
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), ncols=ncols)
    log_axis(ax, "x", float(runs.params.min()), float(runs.params.max()))
    ax.set_xlabel(AXIS_PARAMS)
    ax.set_ylabel(AXIS_LOSS)
    ax.grid(True, which="major", alpha=0.3)
    set_title(fig, title(result, "IsoFLOP profiles"))
    return to_svg(fig)


def _draw_budgets(ax: Any, result: FitResult, runs: RunArrays, groups: list[BudgetGroup]) -> None:
    from matplotlib import colormaps

    colours = colormaps["viridis"](np.linspace(0.0, 0.9, max(len(groups), 1)))
    opt_n: list[float] = []
    opt_l: list[float] = []
    for k, g in enumerate(groups):
        colour = colours[k]
        curve = _law_curve(result, runs, g)
        label = fmt_flops(g.flops) + ("" if curve else " (no fitted curve)")
        ax.scatter(
            runs.params[g.rows], runs.loss[g.rows], s=16, color=colour, label=label, zorder=3
        ).set_gid(f"budget-{k}")
        if curve is None:
            continue
        N, L, best = curve
        ax.plot(N, L, color=colour, lw=1.2, alpha=0.8)[0].set_gid(f"budget-{k}-curve")
        if best is not None:
            opt_n.append(best[0])
            opt_l.append(best[1])
    if opt_n:
        what = "parabola vertex" if isinstance(result.law, Frontier) else "law's optimum"
        ax.scatter(
            opt_n,
            opt_l,
            marker="*",
            s=120,
            color="black",
            zorder=4,
            label=f"optimum per budget ({what})",
        ).set_gid("optimum")
    if isinstance(result.law, Frontier) and opt_n:
        C = np.geomspace(min(g.flops for g in groups), max(g.flops for g in groups), 50)
        ax.plot(result.law.params(C), result.law.loss(C), "k--", lw=1, label="frontier L_opt(C)")[
            0
        ].set_gid("frontier-line")


def _draw_many(ax: Any, fig: Any, result: FitResult, runs: RunArrays) -> None:
    """All points in one scatter coloured by compute, and the compute-optimal frontier."""
    sc = ax.scatter(
        runs.params,
        runs.loss,
        s=6,
        c=np.log10(runs.flops),
        cmap="viridis",
        label="runs (colour: compute)",
        zorder=3,
    )
    sc.set_gid("runs")
    fig.colorbar(sc, ax=ax, label="log10 compute C = 6ND (FLOPs)")
    law = result.law
    C = np.geomspace(float(runs.flops.min()), float(runs.flops.max()), 50)
    if isinstance(law, Frontier):
        N, L = law.params(C), law.loss(C)
    else:
        N = np.array(
            [optimum_at_flops(law, float(c), Constraints()).params for c in C], dtype=np.float64
        )
        L = law.predict(N, C / (6.0 * N))
    ax.plot(N, L, "k--", lw=1.2, label="compute-optimal frontier")[0].set_gid("frontier-line")
