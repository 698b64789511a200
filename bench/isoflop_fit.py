"""IsoFLOP fit (Chinchilla approach 2), numpy only: a parabola of loss vs log N per budget,
then log N_opt = a log C + k by least squares.

window=None fits each parabola to every size; window=3 fits it to the best size and its two
neighbours, since a parabola over a wide, lopsided range is pulled towards the steep side
(Chinchilla's caveat). Both are reported; neither replaces the other.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

import numpy as np


def fit_isoflops(runs: list[dict[str, Any]], window: int | None = None) -> dict[str, Any]:
    """runs: dicts with budget_flops, total_params, flops_6nd, val_loss (status ok only)."""
    by_budget: dict[float, list[dict[str, Any]]] = defaultdict(list)
    for r in runs:
        if r.get("status") == "ok" and r.get("val_loss") is not None:
            by_budget[float(r["budget_flops"])].append(r)
    minima = []
    for budget, group in sorted(by_budget.items()):
        group = sorted(group, key=lambda r: float(r["total_params"]))
        best = int(np.argmin([float(r["val_loss"]) for r in group]))
        best_is_edge = best in (0, len(group) - 1)
        if window is not None and len(group) > window:
            lo = min(max(0, best - window // 2), len(group) - window)
            group = group[lo : lo + window]
        log_n = np.log([float(r["total_params"]) for r in group])
        if len(set(log_n.tolist())) < 3:
            continue
        loss = np.array([float(r["val_loss"]) for r in group])
        # Centred abscissa keeps the quadratic fit well conditioned.
        centre = float(log_n.mean())
        c2, c1, c0 = np.polyfit(log_n - centre, loss, 2)
        entry: dict[str, Any] = {"budget_flops": budget, "n_runs": len(group)}
        if c2 <= 0:
            entry.update(interior=False, reason="parabola opens downward")
        else:
            log_opt = centre - c1 / (2 * c2)
            entry.update(
                n_opt_params=math.exp(log_opt),
                loss_at_opt=float(c0 - c1**2 / (4 * c2)),
                interior=bool(log_n.min() < log_opt < log_n.max()) and not best_is_edge,
                best_sampled_params=float(group[int(np.argmin(loss))]["total_params"]),
                mean_flops_6nd=float(np.mean([float(r["flops_6nd"]) for r in group])),
            )
        minima.append(entry)
    usable = [m for m in minima if "n_opt_params" in m]
    result: dict[str, Any] = {"minima": minima, "a": None, "k": None}
    if len(usable) >= 2:
        log_c = np.log([m["mean_flops_6nd"] for m in usable])
        log_n_opt = np.log([m["n_opt_params"] for m in usable])
        a, k = np.polyfit(log_c, log_n_opt, 1)
        result.update(a=float(a), k=float(k), n_budgets=len(usable))
        result["all_interior"] = all(m["interior"] for m in minima)
    return result
