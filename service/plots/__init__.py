"""Server-side SVG plots of a fit (optional extra: pip install 'scaling-service[plots]').

    svg: bytes = render_plot("isoflop", result, runs)   # kinds: PLOT_KINDS

matplotlib is imported lazily, so importing this package works without it.
"""

from service.plots.common import plots_available
from service.plots.errors import (
    PlotRunsMismatchError,
    PlotsUnavailableError,
    UnknownPlotKindError,
)
from service.plots.render import PLOT_KINDS, render_plot

__all__ = [
    "PLOT_KINDS",
    "PlotRunsMismatchError",
    "PlotsUnavailableError",
    "UnknownPlotKindError",
    "plots_available",
    "render_plot",
]
