"""Plain-text views of a fit for people: a short repr and a statsmodels-style summary table."""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from service.scaling.result import FitResult

WIDTH = 72
FORMULAS = {
    "chinchilla": "L = E + A/N^alpha + B/D^beta",
    "kaplan": "L = [(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D",
    "data_constrained": "L = E + A/N'^alpha + B/D'^beta (repeated data)",
    "frontier": "N_opt = k_N C^a, D_opt = k_D C^b, L_opt = E + k_L C^-gamma",
}
DERIVED = {"a": "a (N_opt ~ C^a)", "b": "b (D_opt ~ C^b)"}


def _num(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}g}"


def _pairs(left: list[tuple[str, str]], right: list[tuple[str, str]]) -> list[str]:
    """Two columns of label: value, as statsmodels lays out its header."""
    half = WIDTH // 2
    lines = []
    for i in range(max(len(left), len(right))):
        cells = []
        for side in (left, right):
            label, value = side[i] if i < len(side) else ("", "")
            cells.append(f"{label + ':' if label else '':<20}{value:>{half - 22}}  ")
        lines.append("".join(cells).rstrip())
    return lines


def _iterations(n: int) -> str:
    return f" ({n} it.)" if n else ""


def fit_summary(result: FitResult, confidence: float = 0.95) -> str:
    """Header (law, method, runs, diagnostics), parameter table, warnings."""
    law = result.law
    n_boot = len(result.bootstrap_samples)
    boot = f"{n_boot} (seed {result.seed})" if n_boot else "none"
    left = [
        ("Law", law.name),
        ("Method", result.method),
        ("Runs", str(result.n_runs)),
        ("Bootstrap samples", boot),
        ("Max FLOPs", f"{result.max_flops:.3g}"),
    ]
    right = [
        ("Residual RMSE (log)", _num(result.rmse_log_loss)),
        ("Extrapolation error", _num(result.extrapolation_error)),
        ("Objective", _num(result.objective)),
        ("Huber delta", _num(result.huber_delta)),
        ("Converged", ("yes" if result.converged else "no") + _iterations(result.iterations)),
    ]
    title = f"{law.name} fit ({result.method})"
    lines = [title.center(WIDTH).rstrip(), "=" * WIDTH, *_pairs(left, right)]
    lines.append(f"{FORMULAS.get(law.name, law.name)}".center(WIDTH).rstrip())
    intervals = result.intervals(confidence=confidence)
    pct = f"{confidence:.0%}"
    lines += ["-" * WIDTH, f"{'':<24}{'estimate':>14}{pct + ' low':>16}{pct + ' high':>16}"]
    lines.append("-" * WIDTH)
    for name, value in result.estimates.items():
        lo, hi = intervals.get(name, (None, None))
        label = DERIVED.get(name, name)
        lines.append(f"{label:<24}{_num(value, 5):>14}{_num(lo, 5):>16}{_num(hi, 5):>16}")
    lines.append("=" * WIDTH)
    if not n_boot:
        lines.append("No bootstrap samples: fit with bootstrap=... for intervals.")
    if result.grouping:
        lines += textwrap.wrap(
            f"Budgets: {len(result.budgets)} used, {len(result.dropped_budgets)} dropped "
            f"(`dropped_budgets`); grouped by {result.grouping}",
            WIDTH,
        )
    if result.outliers:
        lines.append(f"Possible outliers (row indices): {', '.join(map(str, result.outliers))}")
    if result.warnings:
        lines.append("Warnings:")
        for i, warning in enumerate(result.warnings, 1):
            lines += textwrap.wrap(f"[{i}] {warning}", WIDTH, subsequent_indent="    ")
    return "\n".join(lines)


def fit_repr(result: FitResult) -> str:
    """Every field but the bootstrap samples, which are counted instead of listed."""
    fields = {
        "law": repr(result.law),
        "method": repr(result.method),
        "n_runs": repr(result.n_runs),
        "rmse_log_loss": _num(result.rmse_log_loss),
        "extrapolation_error": _num(result.extrapolation_error),
        "objective": _num(result.objective),
        "converged": repr(result.converged),
        "bootstrap": f"<{len(result.bootstrap_samples)} samples, seed {result.seed}>",
        "outliers": (
            repr(result.outliers) if len(result.outliers) <= 10 else f"<{len(result.outliers)}>"
        ),
        "budgets": f"<{len(result.budgets)}>",
        "warnings": f"<{len(result.warnings)}>",
    }
    return "FitResult(" + ", ".join(f"{k}={v}" for k, v in fields.items()) + ")"
