"""What the MLflow run logging a fit holds: params, metrics, tags, artifacts (docs/integrations.md).

Metric names: ``fit/<parameter>`` (E in nats/token, A, B, alpha, beta, ... as the law names
them) with ``fit/<parameter>_ci95_low`` and ``_ci95_high`` (95% bootstrap percentile intervals,
when the fit has resamples); ``goodness/<measure>``; ``recommendation/<quantity>`` at the target
budget (params in the experiment's parameter convention, tokens, flops by 6ND, loss in
nats/token) with ``_ci95_low`` and ``_ci95_high``.
"""

import json
import math
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from service.errors import ServiceError
from service.fits import data
from service.fits.cache import FitCache
from service.fits.present import fit_out
from service.fits.recommend import answer, resolve_fit
from service.plots import PLOT_KINDS, render_plot
from service.scaling import FitResult, ScalingError
from service.schemas.fits import FitSettings
from service.schemas.recommendations import BudgetSpec, ConstraintsSpec, Recommendation
from service.store.models import Experiment, Fit

FIT_ID_TAG = "scaling.fit_id"
SOURCE_ID_TAG = "scaling.source_id"
EXPERIMENT_TAG = "scaling.experiment"
CONFIDENCE = 0.95
# MLflow keeps a param value up to 6000 characters.
MAX_PARAM_CHARS = 6000


@dataclass(frozen=True)
class Artifact:
    path: str
    content: bytes
    content_type: str


@dataclass
class FitRecord:
    """One fit as an MLflow run."""

    run_name: str
    tags: dict[str, str]
    params: dict[str, str]
    metrics: dict[str, float]
    artifacts: list[Artifact] = field(default_factory=list)


def target_flops(experiment: Experiment, configured: float | None) -> float | None:
    """The source's results_target_flops, else the autopilot's target_flops when it has one."""
    if configured is not None:
        return configured
    target = (experiment.autofill or {}).get("target_flops")
    return float(target) if isinstance(target, int | float) else None


def _finite(metrics: dict[str, float | None]) -> dict[str, float]:
    return {
        key: float(value)
        for key, value in metrics.items()
        if value is not None and math.isfinite(float(value))
    }


def _intervals(prefix: str, intervals: dict[str, tuple[float, float]]) -> dict[str, float | None]:
    metrics: dict[str, float | None] = {}
    for name, (low, high) in intervals.items():
        metrics[f"{prefix}/{name}_ci95_low"] = low
        metrics[f"{prefix}/{name}_ci95_high"] = high
    return metrics


def recommendation_at(
    session: Session, fit_row: Fit, experiment: Experiment, flops: float, cache: FitCache
) -> Recommendation:
    resolved = resolve_fit(session, fit_row, experiment, cache)
    return answer(resolved, BudgetSpec(flops=flops), ConstraintsSpec(), CONFIDENCE)


def describe(
    session: Session,
    fit_row: Fit,
    *,
    source_id: int,
    target: float | None,
    cache: FitCache,
) -> FitRecord:
    """The run logging a succeeded fit: what it is, what came out, and its plots (SVG).

    A recommendation or plot that cannot be made is said in a tag, not an error: the fit is
    logged all the same.
    """
    assert fit_row.result is not None and fit_row.run_ids is not None
    experiment = fit_row.experiment
    stored = fit_row.result
    result = cache.get(fit_row.id, fit_row.runs_sha256 or "", lambda: FitResult.from_json(stored))
    shown = fit_out(fit_row)
    tags = {
        FIT_ID_TAG: str(fit_row.id),
        SOURCE_ID_TAG: str(source_id),
        EXPERIMENT_TAG: experiment.name,
        "scaling.law": fit_row.law,
        "scaling.method": fit_row.method,
    }
    params = {
        "fit_id": str(fit_row.id),
        "experiment": experiment.name,
        "law": fit_row.law,
        "method": fit_row.method,
        "trigger": fit_row.trigger,
        "param_convention": experiment.param_convention,
        "flops_formula": experiment.flops_formula,
        "n_runs": str(fit_row.n_runs),
        "data_version": str(fit_row.data_version),
        "runs_sha256": str(fit_row.runs_sha256),
        "code_version": fit_row.code_version,
        **{
            f"settings.{key}": json.dumps(value) if isinstance(value, dict | list) else str(value)
            for key, value in fit_row.settings.items()
        },
    }
    goodness = shown.goodness
    metrics: dict[str, float | None] = {
        **{f"fit/{name}": value for name, value in result.estimates.items()},
        **_intervals("fit", result.intervals(confidence=CONFIDENCE)),
        "n_runs": fit_row.n_runs,
        "bootstrap_samples": shown.bootstrap_samples,
        "duration_s": fit_row.duration_s,
    }
    if goodness is not None:
        metrics.update(
            {
                "goodness/objective": goodness.objective,
                "goodness/rmse_log_loss": goodness.rmse_log_loss,
                "goodness/extrapolation_error": goodness.extrapolation_error,
                "goodness/iterations": goodness.iterations,
                "goodness/converged": float(goodness.converged),
            }
        )
    artifacts = [Artifact("fit.json", shown.model_dump_json(indent=2).encode(), "application/json")]
    if target is not None:
        params["target_flops"] = f"{target:g}"
        try:
            recommendation = recommendation_at(session, fit_row, experiment, target, cache)
        except (ScalingError, ServiceError) as exc:
            tags["scaling.recommendation_error"] = str(exc)[:MAX_PARAM_CHARS]
        else:
            metrics.update(
                {
                    f"recommendation/{name}": getattr(recommendation, name)
                    for name in ("params", "tokens", "flops", "tokens_per_param", "loss")
                }
            )
            metrics.update(
                _intervals(
                    "recommendation",
                    {k: (v.low, v.high) for k, v in recommendation.intervals.items()},
                )
            )
            artifacts.append(
                Artifact(
                    "recommendation.json",
                    recommendation.model_dump_json(indent=2).encode(),
                    "application/json",
                )
            )
    artifacts += _plots(session, fit_row, result, tags)
    tags["mlflow.note.content"] = _note(fit_row, experiment, result, target)
    return FitRecord(
        run_name=f"{experiment.name} fit {fit_row.id} ({fit_row.method} {fit_row.law})",
        tags=tags,
        params={key: value[:MAX_PARAM_CHARS] for key, value in params.items()},
        metrics=_finite(metrics),
        artifacts=artifacts,
    )


def _plots(
    session: Session, fit_row: Fit, result: FitResult, tags: dict[str, str]
) -> list[Artifact]:
    assert fit_row.run_ids is not None
    settings = FitSettings.model_validate(fit_row.settings)
    runs = data.load_ids(session, fit_row.run_ids, fit_row.method, settings).runs
    plots, skipped = [], []
    for kind in PLOT_KINDS:
        try:
            svg = render_plot(kind, result, runs)
        except (ServiceError, ScalingError) as exc:
            skipped.append(f"{kind}: {exc}")
            continue
        plots.append(Artifact(f"plots/{kind}.svg", svg, "image/svg+xml"))
    if skipped:
        tags["scaling.plots_skipped"] = "; ".join(skipped)[:MAX_PARAM_CHARS]
    return plots


def _note(fit_row: Fit, experiment: Experiment, result: FitResult, target: float | None) -> str:
    """The run's description in the MLflow UI (markdown)."""
    estimates = ", ".join(
        f"{name} = {value:.4g}"
        for name, value in result.estimates.items()
        if value is not None and math.isfinite(value)
    )
    lines = [
        f"Fit {fit_row.id} of scaling-service experiment `{experiment.name}`: "
        f"{fit_row.method} {fit_row.law}, {fit_row.n_runs} runs (data version "
        f"{fit_row.data_version}).",
        "",
        f"Estimates: {estimates}.",
    ]
    if target is not None:
        lines.append(f"Recommendation at {target:.3g} FLOPs: see the `recommendation/` metrics.")
    return "\n".join(lines)
