"""Typed errors of the plots; the HTTP layer maps any ``ServiceError`` to a JSON error body."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from service.errors import ConflictError, NotFoundError, ServiceError


class PlotsUnavailableError(ServiceError):
    """Plots need matplotlib, which is not installed: pip install 'scaling-service[plots]'."""

    status_code: ClassVar[int] = 501
    code: ClassVar[str] = "plots_unavailable"

    def __init__(self) -> None:
        super().__init__(extra="plots", install="pip install 'scaling-service[plots]'")


class UnknownPlotKindError(NotFoundError):
    """Unknown plot kind; the known kinds are listed in `details.known`."""

    code: ClassVar[str] = "unknown_plot_kind"

    def __init__(self, kind: str, known: Sequence[str]) -> None:
        super().__init__(
            f"Unknown plot kind {kind!r}; known kinds: {', '.join(known)}",
            kind=kind,
            known=list(known),
        )


class PlotRunsMismatchError(ConflictError):
    """The runs given are not the runs the fit used (their number differs)."""

    code: ClassVar[str] = "plot_runs_mismatch"

    def __init__(self, got: int, n_runs: int) -> None:
        super().__init__(
            f"The runs given are not the runs the fit used: got {got} runs, the fit saw {n_runs}",
            got=got,
            n_runs=n_runs,
        )
