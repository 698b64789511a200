"""Allocation: how to spend a training budget under a law.

Training compute is C = 6 N D FLOPs (N params, D tokens). Chinchilla without constraints has the
closed form N_opt = G (C/6)^a (Hoffmann et al. eq. 4); everything else is a bounded 1-D search in
log N along C = 6 N D, which is exact for Chinchilla with bounds too (loss is convex in log N
there). Inference-aware allocation follows Sardana et al. 2024: for a loss l, minimise
6 N D_train + 2 N D_inference subject to L(N, D_train) = l.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, get_args

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import brentq, minimize_scalar

from service.scaling.errors import (
    DegenerateDataError,
    InfeasibleConstraintsError,
    InvalidArgumentError,
    InvalidBudgetError,
    UnreachableLossError,
)
from service.scaling.frontier import Frontier
from service.scaling.hardware import accelerator, check_mfu, flops_from_gpu_hours, gpu_hours
from service.scaling.laws import Chinchilla, DataConstrained, Kaplan
from service.scaling.presets import PowerRule, Preset
from service.scaling.result import FitResult, Source, source_from_json
from service.scaling.shapes import DEFAULT_VOCAB_SIZE, ModelShape, shape_for_params

# Beyond this many times the largest run behind a law, results get an extrapolation warning.
EXTRAPOLATION_WARN = 100.0
# Numeric allocations are repeated per bootstrap sample; at most this many samples are used.
MAX_NUMERIC_SAMPLES = 500
_LOG_C_RANGE = (np.log(1e6), np.log(1e40))


def _positive(name: str, value: float | None) -> None:
    if value is not None and not (np.isfinite(value) and value > 0):
        raise InvalidArgumentError(name=name, reason=f"{value!r} is not finite and positive")


@dataclass(frozen=True)
class Hardware:
    """gpu: a catalogue name (see hardware.CATALOGUE); mfu: model FLOPs utilisation in (0, 1]."""

    gpu: str = "H100-SXM"
    mfu: float = 0.4
    usd_per_gpu_hour: float | None = None

    def __post_init__(self) -> None:
        check_mfu(self.mfu)
        _positive("usd_per_gpu_hour", self.usd_per_gpu_hour)


@dataclass(frozen=True)
class FlopBudget:
    flops: float
    hardware: Hardware | None = None

    def __post_init__(self) -> None:
        if not (np.isfinite(self.flops) and self.flops > 0):
            raise InvalidBudgetError(name="flops", value=self.flops)


@dataclass(frozen=True)
class GpuHoursBudget:
    gpu_hours: float
    hardware: Hardware = field(default_factory=Hardware)

    def __post_init__(self) -> None:
        _positive("gpu_hours", self.gpu_hours)


@dataclass(frozen=True)
class MoneyBudget:
    usd: float
    hardware: Hardware  # needs usd_per_gpu_hour

    def __post_init__(self) -> None:
        _positive("usd", self.usd)


@dataclass(frozen=True)
class TargetLoss:
    loss: float  # nats/token
    hardware: Hardware | None = None

    def __post_init__(self) -> None:
        _positive("loss", self.loss)


@dataclass(frozen=True)
class ModelSize:
    """The inverse question for a model size: the compute (and tokens) for which ``params`` (the
    law's convention) is the compute-optimal size."""

    params: float
    hardware: Hardware | None = None

    def __post_init__(self) -> None:
        _positive("params", self.params)


@dataclass(frozen=True)
class UniqueData:
    """The inverse question for an amount of data: the compute (and model) for which training
    once on ``tokens`` unique tokens is compute-optimal, i.e. the largest compute-optimal run
    that repeats none of them."""

    tokens: float
    hardware: Hardware | None = None

    def __post_init__(self) -> None:
        _positive("tokens", self.tokens)


Budget = FlopBudget | GpuHoursBudget | MoneyBudget | TargetLoss | ModelSize | UniqueData
ComputeBudget = FlopBudget | GpuHoursBudget | MoneyBudget
BudgetBinds = Literal["total", "training"]


@dataclass(frozen=True)
class Constraints:
    """max_params, max_tokens: upper bounds; unique_tokens: distinct tokens available (repeating
    them is modelled by the data_constrained law, forbidden for the others); inference_tokens:
    lifetime inference tokens (Sardana et al.); budget_binds: with inference tokens, what a
    FLOP, GPU-hour or money budget pays for: "total" training and inference (6ND + 2N D_inf =
    C), or "training" only (6ND = C); see service/scaling/inference.py."""

    max_params: float | None = None
    max_tokens: float | None = None
    unique_tokens: float | None = None
    inference_tokens: float = 0.0
    budget_binds: BudgetBinds = "total"

    def __post_init__(self) -> None:
        if self.budget_binds not in get_args(BudgetBinds):
            raise InvalidArgumentError(
                name="budget_binds", reason=f"{self.budget_binds!r} is not 'total' or 'training'"
            )
        for name in ("max_params", "max_tokens", "unique_tokens"):
            _positive(name, getattr(self, name))
        if not (np.isfinite(self.inference_tokens) and self.inference_tokens >= 0):
            raise InvalidArgumentError(
                name="inference_tokens", reason=f"{self.inference_tokens!r} is not finite and >= 0"
            )


@dataclass(frozen=True)
class EqualLossOptimum:
    """The training-compute-optimal model (least 6ND, inference ignored) of the same loss as an
    inference-aware answer, priced with the same inference tokens: what that answer saves on.
    params (the law's convention), tokens (training), flops (training, 6ND), loss (nats/token),
    inference_flops = 2 N D_inference."""

    params: float
    tokens: float
    flops: float
    loss: float
    inference_flops: float

    @property
    def total_flops(self) -> float:
        return self.flops + self.inference_flops

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "total_flops": self.total_flops}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> EqualLossOptimum:
        return cls(**{k: float(v) for k, v in data.items() if k != "total_flops"})


@dataclass(frozen=True)
class Allocation:
    """params (count, the law's convention), tokens (training), flops (training, 6ND), loss
    (nats/token); inference_flops = 2 N D_inference; total_flops = flops + inference_flops;
    intervals: bootstrap percentile intervals at ``confidence`` for params, tokens, flops, loss
    (empty without samples); law: the law (or frontier) the allocation was computed under;
    equal_loss_optimum: with inference tokens, the compute-optimal model of the same loss."""

    params: float
    tokens: float
    flops: float
    loss: float
    tokens_per_param: float
    inference_flops: float
    gpu: str | None
    mfu: float | None
    gpu_hours: float | None
    cost_usd: float | None
    shape: ModelShape
    law: Source
    source: str
    confidence: float
    intervals: dict[str, tuple[float, float]]
    binding: tuple[str, ...]
    warnings: tuple[str, ...]
    notes: tuple[str, ...] = ()  # how the answer was reached, where that is not min L(N, D)
    equal_loss_optimum: EqualLossOptimum | None = None

    @property
    def total_flops(self) -> float:
        """Lifetime compute: training (6ND) plus inference (2N per inference token)."""
        return self.flops + self.inference_flops

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["total_flops"] = self.total_flops
        d["law"] = self.law.to_json()
        d["equal_loss_optimum"] = (
            None if self.equal_loss_optimum is None else self.equal_loss_optimum.to_json()
        )
        d["intervals"] = {k: list(v) for k, v in self.intervals.items()}
        d["binding"] = list(self.binding)
        d["warnings"] = list(self.warnings)
        d["notes"] = list(self.notes)
        return d

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Allocation:
        d = dict(data)
        d.pop("total_flops", None)
        reference = d.pop("equal_loss_optimum", None)
        if reference is not None:
            d["equal_loss_optimum"] = EqualLossOptimum.from_json(reference)
        d["shape"] = ModelShape(**d["shape"])
        d["law"] = source_from_json(d["law"])
        d["intervals"] = {k: (float(v[0]), float(v[1])) for k, v in d["intervals"].items()}
        d["binding"] = tuple(d["binding"])
        d["warnings"] = tuple(d["warnings"])
        d["notes"] = tuple(d.get("notes", ()))
        return cls(**d)


@dataclass(frozen=True)
class Point:
    params: float
    tokens: float
    loss: float
    binding: tuple[str, ...] = ()


def _loss(law: Source, N: float, D: float, cons: Constraints) -> float:
    if isinstance(law, Frontier):
        return float(law.loss(6.0 * N * D))
    if isinstance(law, DataConstrained):
        return float(law.predict(N, D, unique_tokens=cons.unique_tokens)[()])
    return float(law.predict(N, D)[()])


def _log_n_bounds(C: float, cons: Constraints, law: Source) -> tuple[float, float]:
    if not C >= 6.0:  # N >= 1 and D >= 1 need 6 FLOPs; also keeps log() off zero
        raise InfeasibleConstraintsError(
            reason=f"{C:.3g} FLOPs is below 6 (one parameter trained on one token)"
        )
    lo, hi = 0.0, float(np.log(C / 6.0))
    if cons.max_params is not None:
        hi = min(hi, float(np.log(cons.max_params)))
    max_tokens = cons.max_tokens
    if cons.unique_tokens is not None and not isinstance(law, DataConstrained):
        max_tokens = min(max_tokens or np.inf, cons.unique_tokens)
    if max_tokens is not None and np.isfinite(max_tokens):
        lo = max(lo, float(np.log(C / (6.0 * max_tokens))))
    if lo > hi:
        raise InfeasibleConstraintsError(
            reason=f"at {C:.3g} FLOPs the token limit needs more than the parameter limit allows"
        )
    return lo, hi


def optimum_at_flops(law: Source, C: float, cons: Constraints) -> Point:
    """Lowest-loss (N, D) with 6 N D = C inside the constraints."""
    lo, hi = _log_n_bounds(C, cons, law)
    if isinstance(law, Chinchilla | Frontier):
        x_free = (
            float(np.log(law.G) + law.a * np.log(C / 6.0))
            if isinstance(law, Chinchilla)
            else float(np.log(law.params(C)))
        )
        x = min(max(x_free, lo), hi)
    else:

        def f(x: float) -> float:
            N = float(np.exp(x))
            return _loss(law, N, C / (6.0 * N), cons)

        xs = np.linspace(lo, hi, 121)
        vals = np.array([f(x) for x in xs])
        i = int(np.argmin(vals))
        a, b = xs[max(i - 1, 0)], xs[min(i + 1, xs.size - 1)]
        x = float(minimize_scalar(f, bounds=(a, b), method="bounded", options={"xatol": 1e-9}).x)
        x_free = x
    binding: tuple[str, ...] = ()
    if x >= hi - 1e-9 and hi < np.log(C / 6.0) - 1e-9 and x_free > hi + 1e-9:
        binding = ("max_params",)
    elif x <= lo + 1e-9 and lo > 1e-9 and x_free < lo - 1e-9:
        binding = ("max_tokens",)
    N = float(np.exp(x))
    D = C / (6.0 * N)
    return Point(N, D, _loss(law, N, D, cons), binding)


def least_flops_for_loss(law: Source, target: float, cons: Constraints) -> float:
    """Least training compute whose constrained optimum reaches ``target`` nats/token."""
    unconstrained = (
        cons.max_params is None and cons.max_tokens is None and (cons.unique_tokens is None)
    )
    if isinstance(law, Frontier) and (not law.E_fitted or target <= law.E):
        return law.flops_for_loss(target)  # raises: no loss line, or below its E
    if isinstance(law, Chinchilla | DataConstrained) and target <= law.E:
        raise UnreachableLossError(
            target_loss=target, reason=f"at or below the irreducible loss E = {law.E:.4g}"
        )
    if isinstance(law, Chinchilla) and unconstrained:
        a, G = law.a, law.G
        K = law.A * G**-law.alpha + law.B * G**law.beta
        gamma = law.alpha * law.beta / (law.alpha + law.beta)
        return float(6.0 * ((target - law.E) / K) ** (-1.0 / gamma)) if a > 0 else np.inf
    if isinstance(law, Frontier) and unconstrained:
        return law.flops_for_loss(target)

    def gap(logc: float) -> float:
        try:
            return optimum_at_flops(law, float(np.exp(logc)), cons).loss - target
        except InfeasibleConstraintsError:
            return np.inf

    lo, hi = _LOG_C_RANGE
    if gap(hi) > 0:
        best = optimum_at_flops(law, float(np.exp(hi)), cons).loss
        raise UnreachableLossError(
            target_loss=target,
            reason=f"even 1e40 FLOPs within the constraints reach only {best:.4g}",
        )
    if gap(lo) <= 0:
        return float(np.exp(lo))
    return float(np.exp(brentq(gap, lo, hi, xtol=1e-10)))


def tokens_for_loss(law: Source, N: float, target: float, cons: Constraints) -> float | None:
    """Training tokens that bring a size-N model to ``target``; None if it never gets there."""
    if isinstance(law, Chinchilla):
        r = target - law.E - law.A * N**-law.alpha
        return float((law.B / r) ** (1.0 / law.beta)) if r > 0 else None

    def g(logd: float) -> float:
        return _loss(law, N, float(np.exp(logd)), cons) - target

    if g(np.log(1e30)) > 0:
        return None
    if g(0.0) <= 0:
        return 1.0
    return float(np.exp(brentq(g, 0.0, np.log(1e30), xtol=1e-10)))


def inference_optimum(law: Source, target: float, cons: Constraints) -> Point:
    """Minimise 6 N D_train + 2 N D_inference subject to L(N, D_train) = target."""

    def cost(x: float) -> float:
        N = float(np.exp(x))
        D = tokens_for_loss(law, N, target, cons)
        if D is None or (cons.max_tokens is not None and cons.max_tokens < D):
            return np.inf
        return float(np.log(6.0 * N * D + 2.0 * N * cons.inference_tokens))

    hi = float(np.log(cons.max_params)) if cons.max_params is not None else np.log(1e16)
    xs = np.linspace(np.log(1e3), hi, 200)
    vals = np.array([cost(x) for x in xs])
    if not np.isfinite(vals).any():
        raise UnreachableLossError(
            target_loss=target, reason="no model size within the constraints reaches it"
        )
    i = int(np.argmin(vals))
    a, b = xs[max(i - 1, 0)], xs[min(i + 1, xs.size - 1)]
    x = float(minimize_scalar(cost, bounds=(a, b), method="bounded", options={"xatol": 1e-9}).x)
    if not np.isfinite(cost(x)):
        x = float(xs[i])
    N = float(np.exp(x))
    D = tokens_for_loss(law, N, target, cons)
    assert D is not None
    binding = ("max_params",) if cons.max_params is not None and x >= hi - 1e-6 else ()
    return Point(N, D, target, binding)


def _allocate_once(law: Source, budget: Budget, cons: Constraints) -> Point:
    # Imported here: these modules build on this one's solvers.
    from service.scaling import inference, inverse

    served = cons.inference_tokens > 0 and not isinstance(law, Frontier)
    if isinstance(budget, TargetLoss):
        target = budget.loss
        if served:
            return inference_optimum(law, target, cons)
        C = least_flops_for_loss(law, target, cons)
        return optimum_at_flops(law, C, cons)
    if isinstance(budget, ModelSize):
        return inverse.optimum_for_params(law, budget.params, cons)
    if isinstance(budget, UniqueData):
        return inverse.optimum_for_tokens(law, budget.tokens, cons)
    C = budget_flops(budget)
    if not served:
        return optimum_at_flops(law, C, cons)
    assert not isinstance(law, Frontier)
    if cons.budget_binds == "training":
        return inference.served_optimum_at_training_flops(law, C, cons)
    return inference.optimum_at_total_flops(law, C, cons)


def budget_flops(budget: ComputeBudget) -> float:
    if isinstance(budget, FlopBudget):
        return budget.flops
    hw = budget.hardware
    gpu = accelerator(hw.gpu)
    if isinstance(budget, GpuHoursBudget):
        return flops_from_gpu_hours(budget.gpu_hours, gpu, hw.mfu)
    if hw.usd_per_gpu_hour is None or hw.usd_per_gpu_hour <= 0:
        raise InfeasibleConstraintsError(reason="a money budget needs hardware.usd_per_gpu_hour")
    return flops_from_gpu_hours(budget.usd / hw.usd_per_gpu_hour, gpu, hw.mfu)


def _unconstrained(cons: Constraints) -> bool:
    return (
        cons.max_params is None
        and cons.max_tokens is None
        and cons.unique_tokens is None
        and cons.inference_tokens == 0
    )


def _resolve(
    source: Source | FitResult | Preset, need_samples: bool = True
) -> tuple[Source, str, float | None, list[Source]]:
    if isinstance(source, FitResult):
        samples = source.sample_laws() if need_samples else []
        return source.law, f"fit ({source.method}, {source.n_runs} runs)", source.max_flops, samples
    if isinstance(source, Preset):
        return source.law, f"preset {source.name}", source.max_flops, []
    return source, "law", None, []


def _allocate_by_rule(rule: PowerRule, law: Source, budget: Budget) -> Point:
    """The point a published rule N(C) gives, D = C / 6N, loss from the law at that point."""

    def at(C: float) -> Point:
        N = rule.params(C)
        D = C / (6.0 * N)
        return Point(N, D, _loss(law, N, D, Constraints()))

    if isinstance(budget, ModelSize | UniqueData):
        from service.scaling.inverse import solve_flops  # builds on this module

        if isinstance(budget, ModelSize):
            return solve_flops(at, lambda p: p.params, budget.params, "params")
        return solve_flops(at, lambda p: p.tokens, budget.tokens, "tokens")
    if not isinstance(budget, TargetLoss):
        return at(budget_flops(budget))
    target = budget.loss
    lo, hi = _LOG_C_RANGE
    if at(float(np.exp(hi))).loss > target:
        raise UnreachableLossError(
            target_loss=target,
            reason=f"the rule reaches only {at(float(np.exp(hi))).loss:.4g} at 1e40 FLOPs",
        )
    if at(float(np.exp(lo))).loss <= target:
        return at(float(np.exp(lo)))
    logc = brentq(lambda x: at(float(np.exp(x))).loss - target, lo, hi, xtol=1e-12)
    return at(float(np.exp(logc)))


def _rule_differs(rule: PowerRule, law: Source, point: Point) -> str:
    C = 6.0 * point.params * point.tokens
    best = optimum_at_flops(law, C, Constraints())
    slope = float(
        np.log(optimum_at_flops(law, 10.0 * C, Constraints()).params / best.params) / np.log(10.0)
    )
    return (
        f"allocated by the published rule N ~ C^{rule.exponent:g}, not by the preset's law: "
        f"minimising its L(N, D) along C = 6ND would give N = {best.params:.3g} "
        f"(N ~ C^{slope:.3f}) and loss {best.loss:.4g} where the rule gives N = "
        f"{point.params:.3g} and loss {point.loss:.4g}; Kaplan et al. fitted the rule to their "
        "compute-efficient frontier of runs stopped early, not to the minimum of L(N, D)"
    )


def _loss_warnings(
    law: Source, budget: Budget, point: Point, flops: float, max_flops: float | None
) -> list[str]:
    """Say when an answer rests on a loss predicted beyond the runs behind the law.

    A compute budget's N and D come from the law's shape; its predicted loss is flagged only far
    out (EXTRAPOLATION_WARN). A target loss is different: the compute that reaches it is read
    off the loss law, so any target beyond the largest run is an extrapolated answer.
    """
    out: list[str] = []
    if isinstance(law, Frontier) and not law.E_fitted:
        out.append(
            f"the loss {point.loss:.4g} comes from a plain power law in C with no irreducible "
            "term (E = 0: fewer than 3 budgets, E not identified, or a fit stored before E was "
            "fitted): it falls towards zero and is optimistic beyond the data"
        )
        return out
    if max_flops is None or flops <= max_flops:
        return out
    factor = flops / max_flops
    if isinstance(budget, TargetLoss):
        out.append(
            f"the compute for target loss {budget.loss:.4g} is found by extrapolating the "
            f"loss law {factor:.3g}x beyond the largest run ({max_flops:.3g} FLOPs): the answer "
            "is only as good as the law's irreducible loss E and its exponents out there"
        )
    elif isinstance(law, Frontier) and factor <= EXTRAPOLATION_WARN:
        out.append(
            f"the loss {point.loss:.4g} is extrapolated {factor:.3g}x beyond the largest run "
            f"({max_flops:.3g} FLOPs) along the frontier's loss line E + k_L C^-gamma"
        )
    return out


def column_percentiles(arr: NDArray[np.float64], q: tuple[float, ...]) -> NDArray[np.float64]:
    """``np.percentile(arr, q, axis=0)`` with its default (linear) method, the same numbers: one
    partition at the order statistics the percentiles fall between, and numpy's interpolation.

    numpy's general machinery costs more than the work on a thousand bootstrap rows, and an
    uncached answer pays it on every request; the few percentiles' positions are plain floats.
    """
    last = arr.shape[0] - 1
    positions = [percent / 100.0 * last for percent in q]
    below = [math.floor(position) for position in positions]
    above = [min(index + 1, last) for index in below]
    part = np.partition(arr, sorted({*below, *above}), axis=0)
    rows = []
    for position, low_index, high_index in zip(positions, below, above, strict=True):
        low, high = part[low_index], part[high_index]
        fraction = position - low_index
        step = high - low
        # numpy's _lerp: from the nearer end, so that a percentile between equal values is exact.
        rows.append(high - step * (1.0 - fraction) if fraction >= 0.5 else low + step * fraction)
    return np.array(rows)


def _percentile_intervals(
    arr: NDArray[np.float64], confidence: float
) -> dict[str, tuple[float, float]]:
    """Bootstrap percentile intervals of the columns params, tokens, flops, loss of `arr`."""
    low, high = column_percentiles(arr, (50.0 * (1.0 - confidence), 50.0 * (1.0 + confidence)))
    return {
        name: (float(low[j]), float(high[j]))
        for j, name in enumerate(("params", "tokens", "flops", "loss"))
    }


def recommend(
    source: Source | FitResult | Preset,
    budget: Budget,
    *,
    constraints: Constraints | None = None,
    confidence: float = 0.9,
    progress: Callable[[float], None] | None = None,
    vocab_size: int = DEFAULT_VOCAB_SIZE,
) -> Allocation:
    """Compute-optimal (or inference-aware) allocation for ``budget`` under ``source``'s law.

    confidence: of the bootstrap intervals, in (0, 1); vocab_size: the experiment's vocabulary,
    for the model shape (its tied embedding counts in total parameters).
    """
    if not 0.0 < confidence < 1.0:
        raise InvalidArgumentError(name="confidence", reason=f"{confidence!r} is not in (0, 1)")
    cons = constraints or Constraints()
    vectorised = (
        isinstance(source, FitResult)
        and isinstance(source.law, Chinchilla)
        and isinstance(budget, ComputeBudget)
        and _unconstrained(cons)
        and len(source.bootstrap_samples) > 0
    )
    law, label, max_flops, samples = _resolve(source, need_samples=not vectorised)
    warnings: list[str] = []
    notes: list[str] = []
    rule = source.rule if isinstance(source, Preset) else None
    if rule is not None and _unconstrained(cons):
        point = _allocate_by_rule(rule, law, budget)
        notes.append(rule.statement)
        warnings.append(_rule_differs(rule, law, point))
    else:
        if rule is not None:
            notes.append(
                "constraints: the preset's published rule has no constrained form, so this "
                "answer minimises its L(N, D) within them"
            )
        point = _allocate_once(law, budget, cons)
    flops = 6.0 * point.params * point.tokens
    if max_flops is not None and flops > EXTRAPOLATION_WARN * max_flops:
        warnings.append(
            f"budget extrapolates {flops / max_flops:.3g}x beyond the largest run "
            f"({max_flops:.3g} FLOPs) behind this law"
        )
    warnings.extend(_loss_warnings(law, budget, point, flops, max_flops))
    if isinstance(law, Frontier) and (
        cons.inference_tokens > 0 or cons.max_params is not None or cons.max_tokens is not None
    ):
        warnings.append("a power-law frontier has no loss surface: constraints only clip N")
    intervals: dict[str, tuple[float, float]] = {}
    if vectorised:
        assert isinstance(source, FitResult) and isinstance(budget, ComputeBudget)
        arr = source.sample_optima.at(budget_flops(budget))
        if not (arr.min() > 0 and arr.max() < np.inf):  # False with any NaN too
            finite = np.all(np.isfinite(arr) & (arr > 0), axis=1)
            warnings.append(f"{int((~finite).sum())} bootstrap sample(s) gave no allocation")
            arr = arr[finite]
        if len(arr):
            intervals = _percentile_intervals(arr, confidence)
        if progress is not None:
            progress(1.0)
    elif samples:
        numeric = not (isinstance(law, Chinchilla | Frontier) and cons.inference_tokens == 0)
        if numeric and len(samples) > MAX_NUMERIC_SAMPLES:
            step = len(samples) / MAX_NUMERIC_SAMPLES
            samples = [samples[int(i * step)] for i in range(MAX_NUMERIC_SAMPLES)]
        rows = []
        for i, s in enumerate(samples):
            try:
                p = _allocate_once(s, budget, cons)
                rows.append((p.params, p.tokens, 6.0 * p.params * p.tokens, p.loss))
            except (UnreachableLossError, InfeasibleConstraintsError, DegenerateDataError):
                pass  # DegenerateDataError: a resampled frontier whose E ran to 0
            if progress is not None:
                progress((i + 1) / len(samples))
        if len(rows) < len(samples):
            warnings.append(f"{len(samples) - len(rows)} bootstrap sample(s) gave no allocation")
        if rows:
            intervals = _percentile_intervals(np.array(rows), confidence)
    reference = None
    if cons.inference_tokens > 0 and not isinstance(law, Frontier):
        from service.scaling.inference import equal_loss_optimum  # builds on this module

        reference = equal_loss_optimum(law, point.loss, cons)
        notes.extend(_inference_notes(budget, cons, point, reference))
    hw = budget.hardware
    gpu_h = cost = None
    if hw is not None:
        gpu_h = gpu_hours(flops, accelerator(hw.gpu), hw.mfu)
        cost = None if hw.usd_per_gpu_hour is None else gpu_h * hw.usd_per_gpu_hour
    return Allocation(
        params=point.params,
        tokens=point.tokens,
        flops=flops,
        loss=point.loss,
        tokens_per_param=point.tokens / point.params,
        inference_flops=2.0 * point.params * cons.inference_tokens,
        gpu=None if hw is None else accelerator(hw.gpu).name,
        mfu=None if hw is None else hw.mfu,
        gpu_hours=gpu_h,
        cost_usd=cost,
        shape=shape_for_params(
            point.params, total=not isinstance(law, Kaplan), vocab_size=vocab_size
        ),
        law=law,
        source=label,
        confidence=confidence,
        intervals=intervals,
        binding=point.binding,
        warnings=tuple(warnings),
        notes=tuple(notes),
        equal_loss_optimum=reference,
    )


def _inference_notes(
    budget: Budget, cons: Constraints, point: Point, reference: EqualLossOptimum | None
) -> list[str]:
    """What the budget meant with inference tokens, and what the answer saves."""
    d_inf = cons.inference_tokens
    train = 6.0 * point.params * point.tokens
    serve = 2.0 * point.params * d_inf
    out: list[str] = []
    if isinstance(budget, ComputeBudget) and cons.budget_binds == "total":
        out.append(
            f"budget_binds=total: the budget of {budget_flops(budget):.4g} FLOPs pays for "
            f"training ({train:.4g}, 6ND) and {d_inf:.3g} inference tokens ({serve:.4g}, "
            "2N per token): the lowest loss it buys over the model's life; "
            "budget_binds=training spends it all on training instead"
        )
    elif isinstance(budget, ComputeBudget):
        out.append(
            f"budget_binds=training: the budget of {budget_flops(budget):.4g} FLOPs pays for "
            f"training only (6ND); {d_inf:.3g} inference tokens add {serve:.4g} FLOPs (2N per "
            "token); the answer is the lifetime-cheapest model for its loss trained with it"
        )
    elif isinstance(budget, TargetLoss):
        out.append(
            f"target loss with {d_inf:.3g} inference tokens: the least lifetime compute "
            f"(training {train:.4g} + inference {serve:.4g} FLOPs) that reaches it"
        )
    else:
        out.append(
            f"inference tokens do not change an inverse answer; {d_inf:.3g} of them add "
            f"{serve:.4g} FLOPs (2N per token)"
        )
    if reference is not None and isinstance(budget, ComputeBudget | TargetLoss):
        saved = reference.total_flops - (train + serve)
        out.append(
            f"the compute-optimal model of equal loss ({reference.params:.4g} params, "
            f"{reference.tokens:.4g} tokens) trains on {reference.flops:.4g} FLOPs and costs "
            f"{reference.total_flops:.4g} over its life: this answer saves {saved:.4g} FLOPs "
            f"({saved / reference.total_flops:.1%})"
        )
    return out
