"""Shared plumbing: lazy matplotlib, deterministic SVG, budgets, compute-optimal sizes.

matplotlib is imported inside the functions (it is an optional extra) and used only through the
object API (``Figure`` with an Agg canvas, no pyplot), so figures never touch global figure state
and worker threads can render concurrently. The only global state set is two SVG rcParams, once,
to the same values: a fixed hash salt (stable element ids) and text as <text> (small, searchable).
"""

from __future__ import annotations

import importlib.util
import io
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from service.plots.errors import PlotRunsMismatchError, PlotsUnavailableError
from service.scaling import (
    Chinchilla,
    DataConstrained,
    FitResult,
    Frontier,
    Kaplan,
    RunArrays,
)
from service.scaling.fit_isoflop import BudgetMinimum
from service.scaling.result import Source
from service.scaling.runs import budget_labels

FloatArray = NDArray[np.float64]

SVG_HASH_SALT = "scaling-service-plots"
# More budgets than this are drawn as one scatter coloured by compute (loss-curve data).
MAX_BUDGET_SERIES = 24
# A result's budget minimum belongs to a group of runs whose compute is within this log-distance.
BUDGET_MATCH_LOG_TOL = 0.2

LAW_NAMES = {
    "chinchilla": "Chinchilla law",
    "kaplan": "Kaplan law",
    "data_constrained": "Data-constrained law",
    "frontier": "Power-law frontier",
}
AXIS_PARAMS = "parameters N (count)"
AXIS_TOKENS = "training tokens D (count)"
AXIS_FLOPS = "training compute C = 6ND (FLOPs)"
AXIS_LOSS = "loss (nats/token)"

_configure_lock = threading.Lock()
_configured = False


def plots_available() -> str | None:
    """None when plots can be drawn, else why not (the 501's message, for pages to show)."""
    if importlib.util.find_spec("matplotlib") is None:
        return str(PlotsUnavailableError())
    return None


def _matplotlib() -> Any:
    try:
        import matplotlib
    except ImportError as exc:
        raise PlotsUnavailableError() from exc
    global _configured
    if not _configured:
        with _configure_lock:
            if not _configured:
                matplotlib.rcParams["svg.hashsalt"] = SVG_HASH_SALT
                matplotlib.rcParams["svg.fonttype"] = "none"
                _configured = True
    return matplotlib


def new_figure(width: float, height: float, ncols: int = 1) -> tuple[Any, list[Any]]:
    """A figure with an Agg canvas (for text layout) and ``ncols`` axes side by side."""
    _matplotlib()
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise PlotsUnavailableError() from exc
    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    axes = [fig.add_subplot(1, ncols, i + 1) for i in range(ncols)]
    return fig, axes


def to_svg(fig: Any) -> bytes:
    """The figure as an SVG document without a date (same input, same bytes); frees the figure."""
    return save_figure(fig, "svg")


def save_figure(fig: Any, fmt: str) -> bytes:
    """The figure cropped to what it draws (legends outside the axes included) plus a thin pad:
    tight_layout alone left an empty band at the right and bottom of every plot."""
    buf = io.BytesIO()
    try:
        fig.tight_layout()
        # tight_layout leaves a placeholder engine that makes savefig draw twice; drop it.
        fig.set_layout_engine(None)
        metadata = {"Date": None} if fmt == "svg" else None
        fig.savefig(buf, format=fmt, metadata=metadata, bbox_inches="tight", pad_inches=PAD_INCHES)
    finally:
        fig.clear()
    return buf.getvalue()


PAD_INCHES = 0.05
_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def power_of_ten(x: float, _pos: object = None) -> str:
    """Tick label 10ⁿ or m×10ⁿ in plain text (mathtext labels are slow to lay out)."""
    if not np.isfinite(x) or x <= 0:
        return ""
    exp = int(np.floor(np.log10(x) + 1e-9))
    mant = round(x / 10.0**exp, 6)
    power = "10" + str(exp).translate(_SUPERSCRIPT)
    return power if mant == 1.0 else f"{mant:g}×{power}"


def log_axis(ax: Any, which: str, lo: float, hi: float) -> None:
    """Log scale, plain-text labels at decades (and 2, 5 within under two decades), minor ticks
    only within three decades."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter, NullLocator

    axis = ax.xaxis if which == "x" else ax.yaxis
    (ax.set_xscale if which == "x" else ax.set_yscale)("log")
    subs = (1.0,) if np.log10(hi / lo) >= 2.0 else (1.0, 2.0, 5.0)
    axis.set_major_locator(LogLocator(base=10.0, subs=subs))
    axis.set_major_formatter(FuncFormatter(power_of_ten))
    axis.set_minor_formatter(NullFormatter())
    if np.log10(hi / lo) > 3.0:  # minor ticks of many decades cost more than they help
        axis.set_minor_locator(NullLocator())


def check_runs(result: FitResult, runs: RunArrays) -> None:
    if len(runs) != result.n_runs:
        raise PlotRunsMismatchError(got=len(runs), n_runs=result.n_runs)


def title(result: FitResult, what: str) -> str:
    name = LAW_NAMES.get(result.law.name, result.law.name)
    return f"{what}: {name}, {result.method} fit ({result.n_runs} runs)"


def set_title(fig: Any, text: str) -> None:
    fig.suptitle(text, fontsize=11).set_gid("title")


def fmt_flops(c: float) -> str:
    exp = int(np.floor(np.log10(c)))
    return f"{c / 10.0**exp:.2g}e{exp} FLOPs"


@dataclass(frozen=True)
class BudgetGroup:
    """Rows of one compute budget (the core's grouping), its nominal compute and its minimum."""

    index: int
    rows: NDArray[np.int64]
    flops: float
    minimum: BudgetMinimum | None


def budget_groups(result: FitResult, runs: RunArrays) -> list[BudgetGroup]:
    """Budgets in increasing compute, with the fit's per-budget minimum when it has one."""
    labels = budget_labels(runs)
    groups: list[BudgetGroup] = []
    for g in range(int(labels.max()) + 1 if labels.size else 0):
        rows = np.flatnonzero(labels == g)
        C = (
            float(runs.budget[rows][0])
            if runs.budget is not None
            else float(np.exp(np.log(runs.flops[rows]).mean()))
        )
        groups.append(BudgetGroup(g, rows, C, match_minimum(C, result.budgets)))
    return groups


def match_minimum(C: float, minima: tuple[BudgetMinimum, ...]) -> BudgetMinimum | None:
    if not minima:
        return None
    dist = [abs(float(np.log(m.flops / C))) for m in minima]
    i = int(np.argmin(dist))
    return minima[i] if dist[i] < BUDGET_MATCH_LOG_TOL else None


def parabola(runs: RunArrays, group: BudgetGroup) -> FloatArray | None:
    """Coefficients of loss vs (log N - log N_opt) for a budget with a minimum (as the fit)."""
    m = group.minimum
    log_n = np.log(runs.params[group.rows])
    if m is None or np.unique(log_n).size < 3:
        return None
    return np.asarray(np.polyfit(log_n - np.log(m.params_opt), runs.loss[group.rows], 2))


def params_opt(law: Source, flops: FloatArray) -> FloatArray:
    """Compute-optimal N(C) of a law (no data repetition for data_constrained)."""
    C = np.asarray(flops, dtype=np.float64)
    if isinstance(law, Frontier):
        return law.params(C)
    if isinstance(law, DataConstrained):
        law = law.base
    if isinstance(law, Chinchilla):
        return np.asarray(law.G * (C / 6.0) ** law.a)
    assert isinstance(law, Kaplan)
    # Minimise (N_c/N)^r + D_c 6N/C over N: N^(r+1) = r N_c^r C / (6 D_c).
    r = law.alpha_N / law.alpha_D
    return np.asarray((r * law.N_c**r * C / (6.0 * law.D_c)) ** (1.0 / (r + 1.0)))


def tokens_opt(law: Source, flops: FloatArray) -> FloatArray:
    C = np.asarray(flops, dtype=np.float64)
    if isinstance(law, Frontier):
        return law.tokens(C)
    return np.asarray(C / (6.0 * params_opt(law, C)))


def predicted_loss(result: FitResult, runs: RunArrays) -> tuple[FloatArray, str]:
    """Loss the fit predicts for each run (NaN where it predicts none) and what predicted it."""
    law = result.law
    if not isinstance(law, Frontier):
        U = runs.unique_tokens if isinstance(law, DataConstrained) else None
        return law.predict(runs.params, runs.tokens, unique_tokens=U), "fitted law"
    if not result.budgets:
        return law.loss(runs.flops), "frontier loss L_opt(C)"
    pred = np.full(len(runs), np.nan)
    for g in budget_groups(result, runs):
        coef = parabola(runs, g)
        if coef is not None:
            assert g.minimum is not None
            x = np.log(runs.params[g.rows]) - np.log(g.minimum.params_opt)
            pred[g.rows] = np.polyval(coef, x)
    pred[~(pred > 0)] = np.nan
    return pred, "per-budget IsoFLOP parabolas"
