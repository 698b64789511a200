"""Chinchilla Approach 1: the lower envelope of loss curves.

Each row is a point (params, tokens seen, loss) on some run's loss curve. Over log-spaced FLOP
bins (C = 6 N D at that point), the row with the lowest loss is on the envelope; its N and D give
N_opt(C) and D_opt(C), then power laws in C, and L_opt(C) = E + k_L C^-gamma.
"""

from __future__ import annotations

import numpy as np

from service.scaling.errors import DegenerateDataError, InsufficientDataError, NoScalingLawError
from service.scaling.frontier import Frontier, fit_loss_line, fit_power_law
from service.scaling.runs import RunArrays


def fit_envelope(runs: RunArrays, *, bins_per_decade: int = 10) -> tuple[Frontier, int]:
    """Frontier and the number of envelope points it was fitted to."""
    if runs.run_id is None or np.unique(runs.run_id).size == len(runs):
        raise DegenerateDataError(
            target="an envelope frontier",
            reason="rows carry no loss curves (run_id with several points per run)",
        )
    C = 6.0 * runs.params * runs.tokens
    logc = np.log10(C)
    edges = np.arange(np.floor(logc.min()), np.ceil(logc.max()) + 1e-9, 1.0 / bins_per_decade)
    which = np.digitize(logc, edges)
    pick = []
    for b in np.unique(which):
        idx = np.flatnonzero(which == b)
        pick.append(int(idx[np.argmin(runs.loss[idx])]))
    sel = np.array(pick)
    if np.unique(runs.params[sel]).size < 2 or sel.size < 3:
        raise InsufficientDataError(
            needed=2,
            what="model sizes on the envelope",
            target="an envelope frontier",
            got=int(np.unique(runs.params[sel]).size),
        )
    Cs = C[sel]
    k_N, a, _ = fit_power_law(Cs, runs.params[sel])
    k_D, b, _ = fit_power_law(Cs, runs.tokens[sel])
    if not 0.0 < a < 1.0:
        raise NoScalingLawError(
            target="an envelope frontier",
            reason=f"the fitted allocation exponent a = {a:.3g} (N_opt ~ C^a) is outside (0, 1)",
        )
    slope = float(np.polyfit(np.log(Cs), np.log(runs.loss[sel]), 1)[0])
    if slope >= 0:
        raise NoScalingLawError(
            target="an envelope frontier",
            reason=f"the envelope's loss does not fall with compute (log-log slope {slope:.3g})",
        )
    E, k_L, gamma = fit_loss_line(Cs, runs.loss[sel])
    return Frontier(k_N=k_N, a=a, k_D=k_D, b=b, k_L=k_L, gamma=gamma, E=E), int(sel.size)
