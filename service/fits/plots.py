"""Plots of a stored fit: its result and exactly the runs it used, drawn by service.plots."""

from sqlalchemy.orm import Session

from service.errors import InvalidInputError
from service.fits import data
from service.fits.cache import FitCache
from service.plots import render_plot
from service.scaling import FitResult
from service.schemas.fits import FitSettings
from service.store.models import Fit


def render_fit_plot(session: Session, fit_row: Fit, kind: str, cache: FitCache) -> bytes:
    """An SVG of `kind`; an unknown kind is a 404 naming the known ones."""
    if fit_row.status != "succeeded" or fit_row.result is None or fit_row.run_ids is None:
        raise InvalidInputError(
            f"fit {fit_row.id} is {fit_row.status}; only a succeeded fit can be plotted",
            fit_id=fit_row.id,
            status=fit_row.status,
        )
    stored = fit_row.result
    result = cache.get(fit_row.id, fit_row.runs_sha256 or "", lambda: FitResult.from_json(stored))
    settings = FitSettings.model_validate(fit_row.settings)
    runs = data.load_ids(session, fit_row.run_ids, fit_row.method, settings).runs
    return render_plot(kind, result, runs)
