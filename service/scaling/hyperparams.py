"""Learning rate and batch size for a recommended run: a published rule, or the experiment's own.

DeepSeek LLM (Bi et al. 2024, arXiv 2401.02954, section 3.1) fitted, on runs of 1e17 to 2e19
FLOPs, eta_opt = 0.3118 C^-0.1250 and B_opt = 0.2920 C^0.3271 (B in tokens), and checked them
at 1e20 FLOPs. Their C is M x D with M the non-embedding FLOPs per token,
M = 72 n_layer d_model^2 + 12 n_layer d_model l_seq (attention included, vocabulary excluded),
not 6ND: the rule is evaluated at M D of the recommended shape, D its tokens.

A rule fitted from the experiment's runs (service.scaling.hyperparams_fit) is in the
experiment's own C (6ND, or the runs' reported FLOPs) and is evaluated at the allocation's FLOPs;
it wins over the preset for each quantity it has.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from service.scaling.hyperparams_fit import FittedRule, HyperparameterFit
from service.scaling.shapes import ModelShape


@dataclass(frozen=True)
class PowerRule:
    """value = coefficient x C^exponent."""

    coefficient: float
    exponent: float

    def __call__(self, flops: float) -> float:
        return float(self.coefficient * flops**self.exponent)


@dataclass(frozen=True)
class HyperparameterPreset:
    name: str
    source: str
    learning_rate: PowerRule
    batch_size_tokens: PowerRule
    flops_convention: str
    fitted_flops: tuple[float, float]  # the compute range the rule was fitted on
    validated_flops: float | None  # the largest budget the authors checked it at


DEEPSEEK_2024 = HyperparameterPreset(
    name="deepseek-2024",
    source="Bi et al. 2024 (DeepSeek LLM), arXiv 2401.02954, section 3.1",
    learning_rate=PowerRule(0.3118, -0.1250),
    batch_size_tokens=PowerRule(0.2920, 0.3271),
    flops_convention="C = M D: M = 72 n_layer d_model^2 + 12 n_layer d_model context "
    "(non-embedding FLOPs per token, attention included), D = training tokens",
    fitted_flops=(1e17, 2e19),
    validated_flops=1e20,
)


def deepseek_flops(shape: ModelShape, tokens: float, context_tokens: int | None) -> float:
    """DeepSeek's C = M D for a shape trained on ``tokens``; without a context length the
    attention term 12 n_layer d_model l_seq is left out (M = 6 x non-embedding params)."""
    m = 72.0 * shape.n_layer * shape.d_model**2
    if context_tokens is not None:
        m += 12.0 * shape.n_layer * shape.d_model * context_tokens
    return m * tokens


@dataclass(frozen=True)
class Hyperparameter:
    """One recommended value: rule (in words), source (``preset deepseek-2024`` or ``fitted``),
    flops (the C it was evaluated at, in flops_convention), valid_flops (the compute range the
    rule was fitted on), interval (at the answer's confidence; fitted rules only),
    exponent_interval_95 (fitted rules only)."""

    value: float
    rule: str
    source: str
    flops: float
    flops_convention: str
    valid_flops: tuple[float, float]
    interval: tuple[float, float] | None = None
    exponent_interval_95: tuple[float, float] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "rule": self.rule,
            "source": self.source,
            "flops": self.flops,
            "flops_convention": self.flops_convention,
            "valid_flops": list(self.valid_flops),
            "interval": None if self.interval is None else list(self.interval),
            "exponent_interval_95": (
                None if self.exponent_interval_95 is None else list(self.exponent_interval_95)
            ),
        }


@dataclass(frozen=True)
class Hyperparameters:
    """Peak learning rate and batch size (tokens; sequences when the context is known) for a
    recommended run, with the rules they come from and warnings outside their range."""

    learning_rate: Hyperparameter
    batch_size_tokens: Hyperparameter
    batch_size_sequences: float | None
    context_tokens: int | None
    confidence: float
    warnings: tuple[str, ...]
    notes: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "learning_rate": self.learning_rate.to_json(),
            "batch_size_tokens": self.batch_size_tokens.to_json(),
            "batch_size_sequences": self.batch_size_sequences,
            "context_tokens": self.context_tokens,
            "confidence": self.confidence,
            "warnings": list(self.warnings),
            "notes": list(self.notes),
        }


def _outside(name: str, flops: float, lo: float, hi: float, where: str) -> str | None:
    if lo <= flops <= hi:
        return None
    factor = flops / hi if flops > hi else lo / flops
    side = "above" if flops > hi else "below"
    return (
        f"{name}: C = {flops:.3g} is {factor:.3g}x {side} the {lo:.3g}-{hi:.3g} FLOPs {where}; "
        "the value is extrapolated"
    )


def _from_preset(
    preset: HyperparameterPreset, name: str, flops: float
) -> tuple[Hyperparameter, str | None]:
    rule: PowerRule = getattr(preset, name)
    symbol = "eta_opt" if name == "learning_rate" else "B_opt (tokens)"
    value = Hyperparameter(
        value=rule(flops),
        rule=f"{symbol} = {rule.coefficient:g} C^{rule.exponent:g}",
        source=f"preset {preset.name}",
        flops=flops,
        flops_convention=preset.flops_convention,
        valid_flops=preset.fitted_flops,
    )
    where = f"{preset.name} was fitted on"
    if preset.validated_flops is not None:
        where += f" (its authors checked it at {preset.validated_flops:.3g})"
    return value, _outside(name, flops, *preset.fitted_flops, where)


def _from_fit(
    rule: FittedRule, name: str, flops: float, convention: str, confidence: float
) -> tuple[Hyperparameter, str | None]:
    symbol = "eta_opt" if name == "learning_rate" else "B_opt (tokens)"
    lo, hi = rule.flops_range
    value = Hyperparameter(
        value=rule(flops),
        rule=f"{symbol} = {rule.coefficient:.4g} C^{rule.exponent:.4g}, fitted to the best "
        f"value at {len(rule.optima)} budgets of this experiment's sweeps",
        source="fitted",
        flops=flops,
        flops_convention=convention,
        valid_flops=(lo, hi),
        interval=rule.interval(flops, confidence),
        exponent_interval_95=rule.exponent_interval(0.95),
    )
    return value, _outside(name, flops, lo, hi, "of the budgets swept")


def recommend_hyperparameters(
    *,
    shape: ModelShape,
    tokens: float,
    flops: float,
    fitted: HyperparameterFit | None = None,
    context_tokens: int | None = None,
    flops_convention: str = "the experiment's training FLOPs (6ND unless reported)",
    confidence: float = 0.9,
    preset: HyperparameterPreset = DEEPSEEK_2024,
) -> Hyperparameters:
    """The learning rate and batch size for a run of ``shape`` trained on ``tokens`` at
    ``flops`` (the allocation's training FLOPs): from ``fitted`` where it has a rule, else from
    ``preset`` at its own C (DeepSeek: M D of the shape)."""
    preset_c = deepseek_flops(shape, tokens, context_tokens)
    warnings: list[str] = []
    notes: list[str] = []
    if context_tokens is None:
        notes.append(
            f"{preset.name}'s C = M D is computed without the attention term "
            "12 n_layer d_model context: the context length is unknown"
        )
    values: dict[str, Hyperparameter] = {}
    for name in ("learning_rate", "batch_size_tokens"):
        rule = None if fitted is None else getattr(fitted, name)
        if rule is not None:
            value, warning = _from_fit(rule, name, flops, flops_convention, confidence)
        else:
            value, warning = _from_preset(preset, name, preset_c)
        values[name] = value
        if warning is not None:
            warnings.append(warning)
    if fitted is not None:
        notes.extend(fitted.notes)
    batch = values["batch_size_tokens"].value
    return Hyperparameters(
        learning_rate=values["learning_rate"],
        batch_size_tokens=values["batch_size_tokens"],
        batch_size_sequences=None if context_tokens is None else batch / context_tokens,
        context_tokens=context_tokens,
        confidence=confidence,
        warnings=tuple(warnings),
        notes=tuple(notes),
    )
