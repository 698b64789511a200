"""Chinchilla Approach 1: the lower envelope of (params, tokens, loss) points.

Each row is a point (params, tokens seen, loss): a run's final loss, a cooldown branch of a
trunk, or (when the caller includes them) a point on a run's loss curve. Over log-spaced FLOP
bins (C = 6 N D at that point), the row with the lowest loss is on the envelope; its N and D give
N_opt(C) and D_opt(C), then power laws in C, and L_opt(C) = E + k_L C^-gamma. Hoffmann et al.
took the envelope of whole curves from runs of four horizons per size; Hägele et al. (2024) show
that cooldowns branched from one constant-LR trunk give valid points at many token counts, so
the envelope of valid points alone is dense enough.
"""

from __future__ import annotations

import numpy as np

from service.scaling.errors import DegenerateDataError, InsufficientDataError, NoScalingLawError
from service.scaling.frontier import Frontier, fit_loss_line, fit_power_law
from service.scaling.runs import RunArrays


def fit_envelope(runs: RunArrays, *, bins_per_decade: int = 10) -> tuple[Frontier, int]:
    """Frontier and the number of envelope points it was fitted to."""
    if len(runs) < 3:
        raise InsufficientDataError(
            needed=3, what="points", target="an envelope frontier", got=len(runs)
        )
    C = 6.0 * runs.params * runs.tokens
    logc = np.log10(C)
    edges = np.arange(np.floor(logc.min()), np.ceil(logc.max()) + 1e-9, 1.0 / bins_per_decade)
    which = np.digitize(logc, edges)
    pick = []
    contested = False
    for b in np.unique(which):
        idx = np.flatnonzero(which == b)
        pick.append(int(idx[np.argmin(runs.loss[idx])]))
        contested = contested or np.unique(runs.params[idx]).size > 1
    if not contested:
        raise DegenerateDataError(
            target="an envelope frontier",
            reason="no FLOP bin holds points of two model sizes, so no lowest loss is chosen "
            "anywhere: send valid points at several token counts per size (runs of several "
            "horizons, cooldown branches of a trunk) or, knowingly, loss curves",
        )
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
