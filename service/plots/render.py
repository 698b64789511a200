"""The one entry point: ``render_plot(kind, result, runs)`` -> an SVG document."""

from __future__ import annotations

from collections.abc import Callable

from service.plots.common import check_runs
from service.plots.errors import UnknownPlotKindError
from service.plots.frontier import render_frontier
from service.plots.isoflop import render_isoflop
from service.plots.residuals import render_residuals
from service.scaling import FitResult, RunArrays

Renderer = Callable[[FitResult, RunArrays], bytes]
RENDERERS: dict[str, Renderer] = {
    "isoflop": render_isoflop,
    "frontier": render_frontier,
    "residuals": render_residuals,
}
PLOT_KINDS: tuple[str, ...] = tuple(RENDERERS)


def render_plot(kind: str, result: FitResult, runs: RunArrays) -> bytes:
    """An SVG document (UTF-8 bytes) plotting ``result`` over the ``runs`` it was fitted to.

    kind: "isoflop" (loss vs params per budget, fitted curves, optima), "frontier" (N_opt and
    D_opt vs compute with bootstrap bands) or "residuals" (log(predicted/observed) vs compute,
    outliers marked). ``runs`` must be the fit's runs in the order the fit saw them. The same
    input gives the same bytes; safe to call from several threads.

    Raises UnknownPlotKindError (404), PlotRunsMismatchError (409) when the number of runs is
    not the fit's, PlotsUnavailableError (501) when matplotlib (the ``plots`` extra) is missing.
    """
    renderer = RENDERERS.get(kind)
    if renderer is None:
        raise UnknownPlotKindError(kind, PLOT_KINDS)
    check_runs(result, runs)
    return renderer(result, runs)
