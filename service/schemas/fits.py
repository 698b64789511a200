"""Fits: how to fit (law, method, loss, bootstrap, which runs) and what came out."""

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from service.schemas.common import StrictModel
from service.schemas.runs import RunSelection

LawName = Literal["chinchilla", "kaplan", "data_constrained"]
MethodName = Literal["parametric", "isoflop", "envelope"]
FitStatus = Literal["queued", "running", "succeeded", "failed"]


class FitSettings(StrictModel):
    """How a fit is computed and which runs it reads: stored with the fit, read by the fit code
    (service.fits) and shown as `settings`."""

    huber_delta: float = Field(default=1e-3, gt=0, le=10, description="Huber loss delta.")
    bootstrap: int = Field(default=0, ge=0, description="Bootstrap resamples over runs.")
    seed: int = Field(default=0, ge=0, lt=2**32)
    budget_tol: float = Field(
        default=0.1, gt=0, lt=1, description="Relative FLOP tolerance grouping runs into budgets."
    )
    include_excluded: bool = Field(default=False, description="Also fit excluded runs.")
    include_mid_schedule: bool = Field(
        default=False,
        description="Also fit runs whose loss was read mid-schedule (loss_provenance "
        "mid_schedule) and, for envelope fits, the points of stored loss curves before each "
        "run's end. Such losses overstate what a schedule ending there reaches; by default "
        "they are left out and counted in `dropped_runs`.",
    )
    filters: RunSelection = Field(default_factory=RunSelection)

    def stored(self) -> dict[str, Any]:
        """As the fit row's JSON column keeps it."""
        return self.model_dump(mode="json")


class FitCreate(FitSettings):
    law: LawName = Field(
        default="chinchilla",
        description="chinchilla: E + A/N^alpha + B/D^beta; kaplan: Kaplan et al.'s joint law; "
        "data_constrained: Muennighoff et al. (needs unique_tokens on the runs).",
    )
    method: MethodName = Field(
        default="parametric",
        description="parametric (Approach 3), isoflop (Approach 2: parabola per budget), "
        "envelope (Approach 1: the lowest loss per FLOP bin over valid points: runs of several "
        "horizons, cooldown branches; loss curves with include_mid_schedule).",
    )

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"law": "chinchilla", "method": "parametric", "bootstrap": 100}]
        }
    )

    def settings(self) -> FitSettings:
        return FitSettings.model_validate(self.model_dump(exclude={"law", "method"}))


class DroppedRuns(BaseModel):
    """Runs the fit's filters selected but the fit left out, and why."""

    reason: Literal["mid_schedule"] = Field(description="Why: a stable code.")
    count: int = Field(description="How many runs.")
    message: str
    run_ids: list[int] = Field(description="Their ids (the first 100).")


class Goodness(BaseModel):
    objective: float | None = Field(description="Sum of Huber(log residuals) (parametric).")
    rmse_log_loss: float | None = Field(description="RMSE of log(predicted / observed loss).")
    extrapolation_error: float | None = Field(
        description="RMSE of log loss on the largest budget when fitted without it."
    )
    iterations: int
    converged: bool


class FitOut(BaseModel):
    id: int
    experiment: str
    law: str
    method: str
    trigger: Literal["request", "refit"]
    status: FitStatus
    progress: float = Field(description="Fraction of the work done, 0 to 1.")
    eta_seconds: float | None = Field(description="Estimated seconds left while running.")
    stale: bool = Field(description="Runs were added or excluded since this fit's data.")
    settings: FitSettings
    parameters: dict[str, float | None] | None = Field(
        description="Fitted parameters (E, A, B, alpha, beta, ...) and derived a, b, G."
    )
    intervals_95: dict[str, list[float]] | None = Field(
        description="95% bootstrap percentile intervals; empty without resamples."
    )
    bootstrap_samples: int
    goodness: Goodness | None
    outliers: list[int] = Field(description="Run ids flagged as outliers (kept in the fit).")
    warnings: list[str]
    dropped_runs: list[DroppedRuns] = Field(
        default_factory=list,
        description="Runs selected but left out of the fit, by reason (e.g. mid_schedule).",
    )
    n_runs: int | None
    runs_sha256: str | None = Field(description="Fingerprint of the runs used.")
    run_ids: list[int] | None
    error: dict[str, Any] | None
    code_version: str
    duration_s: float | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
