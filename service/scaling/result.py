"""The result of a fit: a frozen value that round-trips through plain JSON."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from service.scaling.errors import UnknownNameError
from service.scaling.fit_isoflop import BudgetMinimum, DroppedBudget
from service.scaling.frontier import Frontier
from service.scaling.laws import AnyLaw, Chinchilla, DataConstrained, law_from_json
from service.scaling.result_summary import fit_repr, fit_summary
from service.scaling.sample_optima import ChinchillaSampleOptima, FloatArray

Source = AnyLaw | Frontier


def _opt_float(v: Any) -> float | None:
    return None if v is None else float(v)


def source_from_json(data: dict[str, Any]) -> Source:
    if data.get("law") == Frontier.name:
        return Frontier.from_json(data)
    return law_from_json(data)


def source_from_values(template: Source, values: FloatArray) -> Source:
    return type(template)(*(float(v) for v in values))


def allocation_exponents(law: Source) -> dict[str, float]:
    """Allocation exponents a (N_opt ~ C^a) and b (D_opt ~ C^b) implied by the law."""
    if isinstance(law, Frontier):
        return {"a": law.a, "b": law.b}
    if isinstance(law, Chinchilla | DataConstrained):
        return {"a": law.beta / (law.alpha + law.beta), "b": law.alpha / (law.alpha + law.beta)}
    return {}


@dataclass(frozen=True)
class FitResult:
    """A fitted law with diagnostics and (optionally) bootstrap samples.

    objective: the minimised sum of Huber(log residuals) (parametric; None for frontier methods);
    rmse_log_loss: RMSE of log(predicted / observed loss); extrapolation_error: RMSE of log
    loss on the largest budget when fitted without it (parametric), or |log(N_opt predicted /
    N_opt observed)| at that budget (isoflop); max_flops: the largest run's compute (FLOPs);
    outliers: row indices with a robust |z| > 4 of the log residual (kept in the fit);
    budgets: the IsoFLOP budgets used (vertex, runs, FLOPs range); dropped_budgets: those that
    could not be used and why; grouping: how runs were grouped into budgets (isoflop);
    bootstrap_samples: refitted parameters, one row per resample, in ``law.param_names`` order.

    ``repr`` counts the bootstrap samples instead of listing them; ``summary()`` is a table.
    """

    law: Source
    method: str
    n_runs: int
    huber_delta: float | None
    objective: float | None
    iterations: int
    converged: bool
    rmse_log_loss: float | None
    extrapolation_error: float | None
    max_flops: float
    outliers: tuple[int, ...] = ()
    warnings: tuple[str, ...] = ()
    budgets: tuple[BudgetMinimum, ...] = ()
    bootstrap_samples: tuple[tuple[float, ...], ...] = ()
    seed: int = 0
    dropped_budgets: tuple[DroppedBudget, ...] = ()
    grouping: str = ""

    def __post_init__(self) -> None:
        for name in ("huber_delta", "objective", "rmse_log_loss", "extrapolation_error"):
            object.__setattr__(self, name, _opt_float(getattr(self, name)))
        object.__setattr__(self, "max_flops", float(self.max_flops))
        object.__setattr__(self, "n_runs", int(self.n_runs))
        object.__setattr__(self, "iterations", int(self.iterations))
        object.__setattr__(self, "converged", bool(self.converged))

    def __repr__(self) -> str:
        return fit_repr(self)

    def summary(self, *, confidence: float = 0.95) -> str:
        """A readable table: law, method, runs, residual RMSE, parameters with their bootstrap
        intervals at ``confidence`` (where there are samples), outliers and warnings."""
        return fit_summary(self, confidence)

    @property
    def param_names(self) -> tuple[str, ...]:
        return self.law.param_names

    @property
    def estimates(self) -> dict[str, float]:
        return dict(
            zip(self.law.param_names, self.law.values(), strict=True)
        ) | allocation_exponents(self.law)

    @cached_property
    def samples(self) -> FloatArray:
        """Bootstrap parameters as an array (computed once: answers reuse a cached fit)."""
        return np.asarray(self.bootstrap_samples, dtype=np.float64).reshape(
            -1, len(self.law.param_names)
        )

    @cached_property
    def sample_optima(self) -> ChinchillaSampleOptima:
        """The samples' compute-optimal allocations by budget (a Chinchilla fit's), with what
        does not depend on the budget computed once."""
        return ChinchillaSampleOptima(self.samples, self.law.param_names)

    def sample_laws(self) -> list[Source]:
        return [source_from_values(self.law, row) for row in self.samples]

    def intervals(self, *, confidence: float = 0.95) -> dict[str, tuple[float, float]]:
        """Percentile intervals of every parameter and derived exponent; empty without samples."""
        S = self.samples
        if S.shape[0] == 0:
            return {}
        q = 50.0 * (1.0 - confidence), 50.0 * (1.0 + confidence)
        cols = {name: S[:, j] for j, name in enumerate(self.law.param_names)}
        if isinstance(self.law, Chinchilla | DataConstrained):
            al, be = cols["alpha"], cols["beta"]
            cols |= {"a": be / (al + be), "b": al / (al + be)}
        out: dict[str, tuple[float, float]] = {}
        for name, v in cols.items():
            lo, hi = np.percentile(v, q)
            out[name] = (float(lo), float(hi))
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "law": self.law.to_json(),
            "method": self.method,
            "n_runs": self.n_runs,
            "huber_delta": self.huber_delta,
            "objective": self.objective,
            "iterations": self.iterations,
            "converged": self.converged,
            "rmse_log_loss": self.rmse_log_loss,
            "extrapolation_error": self.extrapolation_error,
            "max_flops": self.max_flops,
            "outliers": list(self.outliers),
            "warnings": list(self.warnings),
            "budgets": [b.to_json() for b in self.budgets],
            "dropped_budgets": [b.to_json() for b in self.dropped_budgets],
            "grouping": self.grouping,
            "bootstrap": {
                "seed": self.seed,
                "param_names": list(self.law.param_names),
                "samples": [list(row) for row in self.bootstrap_samples],
            },
            "estimates": self.estimates,
            "intervals_95": {k: list(v) for k, v in self.intervals(confidence=0.95).items()},
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FitResult:
        law = source_from_json(data["law"])
        boot = data.get("bootstrap") or {}
        names = tuple(boot.get("param_names", law.param_names))
        samples = [tuple(float(x) for x in row) for row in boot.get("samples", [])]
        if isinstance(law, Frontier) and names == law.param_names[:6]:
            # Stored before the frontier had E: its samples are plain power laws (E = 0).
            names, samples = law.param_names, [(*row, law.E) for row in samples]
        if names != law.param_names:
            raise UnknownNameError(
                kind="bootstrap parameter order", name=",".join(names), known=law.param_names
            )
        extrap = data.get("extrapolation_error")
        return cls(
            law=law,
            method=str(data["method"]),
            n_runs=int(data["n_runs"]),
            huber_delta=_opt_float(data.get("huber_delta")),
            objective=_opt_float(data.get("objective")),
            iterations=int(data["iterations"]),
            converged=bool(data["converged"]),
            rmse_log_loss=_opt_float(data.get("rmse_log_loss")),
            extrapolation_error=None if extrap is None else float(extrap),
            max_flops=float(data["max_flops"]),
            outliers=tuple(int(i) for i in data.get("outliers", [])),
            warnings=tuple(str(w) for w in data.get("warnings", [])),
            budgets=tuple(BudgetMinimum.from_json(b) for b in data.get("budgets", [])),
            bootstrap_samples=tuple(samples),
            seed=int(boot.get("seed", 0)),
            dropped_budgets=tuple(
                DroppedBudget.from_json(b) for b in data.get("dropped_budgets", [])
            ),
            grouping=str(data.get("grouping", "")),
        )
