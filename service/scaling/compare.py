"""Several laws or fits at one budget, side by side, and how far apart they are.

Each row is one source's allocation (or why it gave none) with the conventions its numbers
assume: parameters counted in total or without embeddings, and the compute the allocation rule
reads, C = 6ND or Kaplan et al.'s C_min (= C/2 as Hoffmann et al. App. D.4 read it). The
disagreement states the spread in numbers: max/min of N, D and C, the range of predicted loss,
and whether the bootstrap intervals overlap, with the caveats that make part of a spread a matter
of convention or of data rather than of science.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from service.scaling.allocate import (
    Allocation,
    Budget,
    Constraints,
    TargetLoss,
    _unconstrained,
    recommend,
)
from service.scaling.errors import InvalidArgumentError, ScalingError
from service.scaling.laws import Kaplan
from service.scaling.presets import Preset
from service.scaling.result import FitResult, Source

ParamsConvention = Literal["total", "non-embedding"]
FlopsConvention = Literal["C", "C_min"]
QUANTITIES = ("params", "tokens", "flops", "loss")


@dataclass(frozen=True)
class Candidate:
    """One source to compare. params_convention: how its N counts parameters (None: from the
    preset, else non-embedding for a Kaplan law and total otherwise); data: the data set and
    tokenizer its loss is measured on (None: the preset's, else unknown), since losses on
    different data or tokenizers are not comparable."""

    label: str
    source: Source | FitResult | Preset
    params_convention: ParamsConvention | None = None
    data: str | None = None


@dataclass(frozen=True)
class ComparedRow:
    """label; the allocation, or the error that stopped it; the conventions its numbers
    assume."""

    label: str
    params_convention: ParamsConvention
    flops_convention: FlopsConvention
    conventions: str
    allocation: Allocation | None = None
    error: ScalingError | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "params_convention": self.params_convention,
            "flops_convention": self.flops_convention,
            "conventions": self.conventions,
            "allocation": None if self.allocation is None else self.allocation.to_json(),
            "error": None
            if self.error is None
            else {"code": self.error.code, "message": self.error.message},
        }


@dataclass(frozen=True)
class Spread:
    """One quantity across the rows that answered: lowest and highest value and their labels;
    ratio = high / low (params, tokens, flops) or difference = high - low (loss, nats/token);
    intervals_overlap: whether every row's bootstrap interval shares a point (None unless at
    least two rows have intervals)."""

    low: float
    high: float
    low_label: str
    high_label: str
    ratio: float
    difference: float
    intervals_overlap: bool | None


@dataclass(frozen=True)
class Disagreement:
    """How far apart the answers are (None spreads with fewer than two answers), the caveats,
    and all of it in one statement."""

    answered: int
    spreads: dict[str, Spread]
    caveats: tuple[str, ...]
    statement: str


@dataclass(frozen=True)
class Comparison:
    budget: Budget
    rows: tuple[ComparedRow, ...]
    disagreement: Disagreement
    confidence: float = 0.9
    constraints: Constraints = field(default_factory=Constraints)

    def summary(self) -> str:
        """A plain-text table of the rows, then the disagreement."""
        head = f"{'source':<22}{'params':>11}{'tokens':>11}{'FLOPs':>11}{'loss':>8}  conventions"
        lines = [f"comparison at {_budget_words(self.budget)}", head, "-" * len(head)]
        for row in self.rows:
            a = row.allocation
            conv = f"{row.params_convention} N, {row.flops_convention}"
            if a is None:
                lines.append(f"{row.label[:21]:<22}{'error: ' + str(row.error):>41}  {conv}")
                continue
            lines.append(
                f"{row.label[:21]:<22}{a.params:>11.4g}{a.tokens:>11.4g}{a.flops:>11.4g}"
                f"{a.loss:>8.4g}  {conv}"
            )
        lines.append("")
        lines.append(self.disagreement.statement)
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {
            "rows": [row.to_json() for row in self.rows],
            "disagreement": {
                "answered": self.disagreement.answered,
                "spreads": {k: vars(v) for k, v in self.disagreement.spreads.items()},
                "caveats": list(self.disagreement.caveats),
                "statement": self.disagreement.statement,
            },
        }


def _budget_words(budget: Budget) -> str:
    if isinstance(budget, TargetLoss):
        return f"target loss {budget.loss:.4g} nats/token"
    for name, unit in (
        ("flops", "FLOPs"),
        ("gpu_hours", "GPU-hours"),
        ("usd", "USD"),
        ("params", "params"),
        ("tokens", "unique tokens"),
    ):
        if hasattr(budget, name):
            return f"{getattr(budget, name):.4g} {unit}"
    return str(budget)


def _conventions(
    candidate: Candidate, cons: Constraints
) -> tuple[ParamsConvention, FlopsConvention, str]:
    source = candidate.source
    law = source.law if isinstance(source, FitResult | Preset) else source
    params: ParamsConvention
    if candidate.params_convention is not None:
        params = candidate.params_convention
    elif isinstance(source, Preset):
        params = "non-embedding" if source.params_convention == "non-embedding" else "total"
    else:
        params = "non-embedding" if isinstance(law, Kaplan) else "total"
    if isinstance(source, Preset) and source.rule is not None and _unconstrained(cons):
        return params, "C_min", source.rule.statement
    how = (
        "N from the fitted frontier N_opt = k_N C^a, D = C / 6N"
        if law.name == "frontier"
        else "N and D minimise the law's L(N, D) along C = 6ND"
    )
    return params, "C", f"{params} parameters; C = 6ND training FLOPs; {how}"


def _spread(rows: Sequence[ComparedRow], name: str) -> Spread:
    answered = [(r.label, r.allocation) for r in rows if r.allocation is not None]
    values = [(getattr(a, name), label) for label, a in answered]
    low, low_label = min(values)
    high, high_label = max(values)
    intervals = [a.intervals[name] for _, a in answered if name in a.intervals]
    overlap = (
        max(lo for lo, _ in intervals) <= min(hi for _, hi in intervals)
        if len(intervals) >= 2
        else None
    )
    return Spread(
        low=float(low),
        high=float(high),
        low_label=low_label,
        high_label=high_label,
        ratio=float(high / low),
        difference=float(high - low),
        intervals_overlap=overlap,
    )


def _disagreement(
    rows: Sequence[ComparedRow], candidates: Sequence[Candidate], confidence: float
) -> Disagreement:
    answered = [r for r in rows if r.allocation is not None]
    if len(answered) < 2:
        return Disagreement(
            answered=len(answered),
            spreads={},
            caveats=(),
            statement=f"{len(answered)} of {len(rows)} sources answered: nothing to compare",
        )
    spreads = {name: _spread(rows, name) for name in QUANTITIES}
    parts = []
    for name in ("params", "tokens", "flops"):
        s = spreads[name]
        if s.ratio > 1.0 + 1e-9:
            parts.append(
                f"{name} {s.ratio:.3g}x ({s.low:.3g} from {s.low_label} to {s.high:.3g} from "
                f"{s.high_label})"
            )
    loss = spreads["loss"]
    if loss.difference > 1e-9 or not parts:
        parts.append(
            f"predicted loss {loss.difference:.3g} nats/token apart ({loss.low:.4g} from "
            f"{loss.low_label} to {loss.high:.4g} from {loss.high_label})"
        )
    caveats: list[str] = []
    by_label = {c.label: c for c in candidates}
    conventions = {r.params_convention for r in answered}
    if len(conventions) > 1:
        caveats.append(
            "parameters are counted differently (total vs non-embedding): part of the params "
            "ratio is convention, not disagreement"
        )
    for r in answered:
        source = by_label[r.label].source
        if r.flops_convention == "C_min" and isinstance(source, Preset) and source.rule:
            rule = source.rule
            caveats.append(
                f"{r.label} reads its rule at C_min = {rule.share:g} C (Kaplan et al.'s "
                "compute-efficient compute, as Hoffmann et al. App. D.4 read it); reading "
                f"C_min = C would scale its N by {rule.share**-rule.exponent:.3g}x"
            )
    data = {_data_of(by_label[r.label]) for r in answered}
    if len(data) > 1 or None in data:
        caveats.append(
            "losses measured on different data or tokenizers (or on unknown ones) are not "
            "comparable: read the loss spread only between laws of the same data"
        )
    apart = [
        name
        for name in QUANTITIES
        if spreads[name].intervals_overlap is False  # None: too few intervals to say
    ]
    if apart:
        caveats.append(
            f"the {confidence:.0%} bootstrap intervals of {', '.join(apart)} do not overlap: "
            "the fits disagree beyond their own noise"
        )
    statement = f"{len(answered)} answers disagree by: " + "; ".join(parts)
    if caveats:
        statement += ". Caveats: " + "; ".join(caveats)
    return Disagreement(
        answered=len(answered), spreads=spreads, caveats=tuple(caveats), statement=statement + "."
    )


def _data_of(candidate: Candidate) -> str | None:
    if candidate.data is not None:
        return candidate.data
    return candidate.source.data or None if isinstance(candidate.source, Preset) else None


def compare(
    candidates: Sequence[Candidate],
    budget: Budget,
    *,
    constraints: Constraints | None = None,
    confidence: float = 0.9,
) -> Comparison:
    """Each candidate's allocation at ``budget`` (a source that cannot answer carries its error),
    the conventions each assumes, and the disagreement between them in numbers."""
    cons = constraints or Constraints()
    if not 0.0 < confidence < 1.0:
        raise InvalidArgumentError(name="confidence", reason=f"{confidence!r} is not in (0, 1)")
    labels = [c.label for c in candidates]
    if len(set(labels)) != len(labels):
        raise InvalidArgumentError(name="candidates", reason="labels must be distinct")
    rows: list[ComparedRow] = []
    for candidate in candidates:
        params, flops, words = _conventions(candidate, cons)
        try:
            allocation = recommend(
                candidate.source, budget, constraints=cons, confidence=confidence
            )
        except ScalingError as exc:
            rows.append(ComparedRow(candidate.label, params, flops, words, error=exc))
            continue
        rows.append(ComparedRow(candidate.label, params, flops, words, allocation=allocation))
    return Comparison(
        budget=budget,
        rows=tuple(rows),
        disagreement=_disagreement(rows, candidates, confidence),
        confidence=confidence,
        constraints=cons,
    )
