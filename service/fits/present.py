"""A stored fit as the API and the dashboard show it: one presenter for both."""

from datetime import UTC, datetime

from service.fits.service import eta_seconds
from service.fits.staleness import is_stale
from service.schemas.fits import DroppedRuns, FitOut, FitSettings, Goodness
from service.store.models import Fit


def fit_out(fit_row: Fit) -> FitOut:
    result = fit_row.result or {}
    run_ids = fit_row.run_ids or []
    outliers = result.get("outliers", [])
    if fit_row.method != "envelope":  # envelope rows are curve points, not runs
        outliers = [run_ids[i] for i in outliers if i < len(run_ids)]
    return FitOut(
        id=fit_row.id,
        experiment=fit_row.experiment.name,
        law=fit_row.law,
        method=fit_row.method,
        trigger=fit_row.trigger,
        status=fit_row.status,
        progress=fit_row.progress,
        eta_seconds=eta_seconds(fit_row, datetime.now(UTC)),
        stale=is_stale(fit_row, fit_row.experiment),
        settings=FitSettings.model_validate(fit_row.settings),
        parameters=result.get("estimates"),
        intervals_95=result.get("intervals_95"),
        bootstrap_samples=len(result.get("bootstrap", {}).get("samples", [])),
        goodness=Goodness(**{k: result[k] for k in Goodness.model_fields}) if result else None,
        outliers=outliers,
        warnings=result.get("warnings", []),
        dropped_runs=[DroppedRuns.model_validate(d) for d in result.get("dropped_runs", [])],
        n_runs=fit_row.n_runs,
        runs_sha256=fit_row.runs_sha256,
        run_ids=fit_row.run_ids,
        error=fit_row.error,
        code_version=fit_row.code_version,
        duration_s=fit_row.duration_s,
        created_at=fit_row.created_at,
        started_at=fit_row.started_at,
        finished_at=fit_row.finished_at,
    )
