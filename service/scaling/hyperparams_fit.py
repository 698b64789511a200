"""The best learning rate and batch size against compute, fitted from an experiment's own sweeps.

A *sweep* is a set of runs at one compute budget, one model size and one value of the other
hyperparameter (batch size when sweeping the learning rate, and the reverse) that try at least
``MIN_SWEEP_VALUES`` distinct values. Its optimum is the vertex of a parabola of loss in
log(value), fitted to the best value tried and up to two neighbours on each side (a parabola over
a wide sweep is pulled towards the steep, diverging side). A vertex outside the values tried, or a
parabola that opens downward, is no optimum: the sweep is dropped and the reason reported.

Of a budget's sweeps, the one whose vertex loss is lowest gives the budget's optimum (the
learning rate of the best model at that budget; in a grid of learning rate x batch size, the best
learning rate at the best batch size). Then log(optimum) = log(k) + e log(C) is fitted by least
squares over budgets, C the runs' own FLOPs (the experiment's convention, 6ND unless reported).
Intervals are Student-t intervals of that regression: with 3 to 6 budgets, a bootstrap over
budgets would mostly resample the same few points.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import stats

FloatArray = NDArray[np.float64]

MIN_SWEEP_VALUES = 3
MIN_BUDGETS = 3  # a line through 2 optima has no residual and no interval
_NEIGHBOURS = 2
_KEY_DIGITS = 3  # values equal to 0.1% in log count as the same setting


@dataclass(frozen=True)
class SweepOptimum:
    """One budget's optimum: flops (geometric mean of the sweep's runs), value (the optimum),
    loss (the parabola's minimum, nats/token), params (the model size swept), runs (in the
    sweep)."""

    flops: float
    value: float
    loss: float
    params: float
    runs: int


@dataclass(frozen=True)
class FittedRule:
    """value(C) = exp(log_k) x C^exponent, fitted to ``optima``; ``cov``: covariance of
    (log_k at the centre, exponent), the centre being ``log_c_mean``; ``dof``: residual degrees
    of freedom."""

    quantity: str
    log_k: float
    exponent: float
    log_c_mean: float
    cov: tuple[tuple[float, float], tuple[float, float]]
    dof: int
    optima: tuple[SweepOptimum, ...]
    dropped: tuple[str, ...]

    @property
    def coefficient(self) -> float:
        return float(np.exp(self.log_k))

    @property
    def flops_range(self) -> tuple[float, float]:
        flops = [o.flops for o in self.optima]
        return min(flops), max(flops)

    def __call__(self, flops: float) -> float:
        return float(np.exp(self.log_k + self.exponent * np.log(flops)))

    def _t(self, confidence: float) -> float:
        return float(stats.t.ppf(0.5 + confidence / 2.0, self.dof))

    def interval(self, flops: float, confidence: float) -> tuple[float, float]:
        """Interval of the fitted line (the best value at ``flops``), not of one new sweep."""
        x = np.array([1.0, np.log(flops) - self.log_c_mean])
        se = float(np.sqrt(max(x @ np.asarray(self.cov) @ x, 0.0)))
        centre = np.log(self(flops))
        half = self._t(confidence) * se
        return float(np.exp(centre - half)), float(np.exp(centre + half))

    def exponent_interval(self, confidence: float = 0.95) -> tuple[float, float]:
        half = self._t(confidence) * float(np.sqrt(max(self.cov[1][1], 0.0)))
        return self.exponent - half, self.exponent + half


@dataclass(frozen=True)
class HyperparameterFit:
    """Fitted rules for ``learning_rate`` and ``batch_size_tokens`` (None where the runs do not
    sweep it at enough budgets; ``notes`` say why)."""

    learning_rate: FittedRule | None
    batch_size_tokens: FittedRule | None
    notes: tuple[str, ...]


def _parabola_vertex(log_v: FloatArray, loss: FloatArray) -> tuple[float, float] | str:
    """(log value, loss) at the vertex, or why there is none."""
    values = np.unique(np.round(log_v, _KEY_DIGITS))
    best = int(np.searchsorted(values, round(float(log_v[np.argmin(loss)]), _KEY_DIGITS)))
    if best in (0, values.size - 1):
        side = "smallest" if best == 0 else "largest"
        return f"the best value tried ({np.exp(values[best]):.3g}) is the {side}"
    lo, hi = max(0, best - _NEIGHBOURS), min(values.size, best + _NEIGHBOURS + 1)
    # Neighbours among the distinct values tried (a value may have been run more than once).
    near = (np.round(log_v, _KEY_DIGITS) >= values[lo]) & (
        np.round(log_v, _KEY_DIGITS) <= values[hi - 1]
    )
    x, y = log_v[near], loss[near]
    centre = float(x.mean())
    c2, c1, c0 = np.polyfit(x - centre, y, 2)
    if c2 <= 0:
        return "loss is not convex in log(value) around the best value tried"
    vertex = centre - c1 / (2.0 * c2)
    if not x.min() <= vertex <= x.max():
        return "the parabola's minimum lies outside the values tried"
    return float(vertex), float(c0 - c1 * c1 / (4.0 * c2))


def _budget_optima(
    flops: FloatArray,
    loss: FloatArray,
    params: FloatArray,
    budget: NDArray[np.int64],
    swept: FloatArray,
    held: FloatArray,
    name: str,
) -> tuple[list[SweepOptimum], list[str], int]:
    """Optimum of ``swept`` per budget; the reasons sweeps were dropped; how many sweeps."""
    have = np.isfinite(swept) & (swept > 0)
    sweeps: dict[tuple[int, float, float], list[int]] = defaultdict(list)
    for i in np.flatnonzero(have):
        held_key = round(float(np.log(held[i])), _KEY_DIGITS) if np.isfinite(held[i]) else 0.0
        key = (int(budget[i]), round(float(np.log(params[i])), _KEY_DIGITS), held_key)
        sweeps[key].append(int(i))
    best: dict[int, SweepOptimum] = {}
    dropped: list[str] = []
    count = 0
    for (group, _, _), rows in sorted(sweeps.items()):
        idx = np.asarray(rows)
        log_v = np.log(swept[idx])
        if np.unique(np.round(log_v, _KEY_DIGITS)).size < MIN_SWEEP_VALUES:
            continue
        count += 1
        c = float(np.exp(np.log(flops[idx]).mean()))
        vertex = _parabola_vertex(log_v, loss[idx])
        if isinstance(vertex, str):
            dropped.append(f"{name} sweep at {c:.3g} FLOPs, N = {params[idx[0]]:.3g}: {vertex}")
            continue
        optimum = SweepOptimum(
            c, float(np.exp(vertex[0])), vertex[1], float(params[idx[0]]), idx.size
        )
        if group not in best or optimum.loss < best[group].loss:
            best[group] = optimum
    return [best[g] for g in sorted(best)], dropped, count


def _line(quantity: str, optima: list[SweepOptimum], dropped: list[str]) -> FittedRule:
    x = np.log([o.flops for o in optima])
    y = np.log([o.value for o in optima])
    centre = float(x.mean())
    X = np.column_stack([np.ones_like(x), x - centre])
    coef, *_ = np.linalg.lstsq(X, y, rcond=None)
    dof = x.size - 2
    resid = y - X @ coef
    s2 = float(resid @ resid) / dof
    cov = s2 * np.linalg.inv(X.T @ X)
    return FittedRule(
        quantity=quantity,
        log_k=float(coef[0] - coef[1] * centre),
        exponent=float(coef[1]),
        log_c_mean=centre,
        cov=((float(cov[0, 0]), float(cov[0, 1])), (float(cov[1, 0]), float(cov[1, 1]))),
        dof=dof,
        optima=tuple(optima),
        dropped=tuple(dropped),
    )


def fit_hyperparameters(
    *,
    flops: FloatArray,
    loss: FloatArray,
    params: FloatArray,
    budget: NDArray[np.int64],
    learning_rate: FloatArray,
    batch_size_tokens: FloatArray,
) -> HyperparameterFit:
    """Fit the best learning rate and batch size against compute from sweeps in these runs.

    One row per run; ``budget``: each run's budget group (service.scaling.runs.budget_labels);
    learning_rate, batch_size_tokens: NaN where a run does not report it.
    """
    rules: dict[str, FittedRule | None] = {}
    notes: list[str] = []
    pairs = (
        ("learning_rate", learning_rate, batch_size_tokens),
        ("batch_size_tokens", batch_size_tokens, learning_rate),
    )
    for name, swept, held in pairs:
        optima, dropped, sweeps = _budget_optima(flops, loss, params, budget, swept, held, name)
        rules[name] = None
        if sweeps == 0:
            notes.append(
                f"no {name} sweep: no budget has runs of one size trying at least "
                f"{MIN_SWEEP_VALUES} values of {name}"
            )
        elif len(optima) < MIN_BUDGETS:
            notes.append(
                f"{name} optima at {len(optima)} budget(s) ({len(dropped)} sweep(s) dropped); "
                f"a fit needs {MIN_BUDGETS}"
            )
            notes.extend(dropped)
        else:
            rules[name] = _line(name, optima, dropped)
    return HyperparameterFit(rules["learning_rate"], rules["batch_size_tokens"], tuple(notes))
