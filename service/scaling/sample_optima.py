"""Eq. 4's compute-optimal allocation for every bootstrap sample of a Chinchilla fit at once.

Every uncached recommendation from a fit asks this for a thousand samples. What does not depend
on the budget (each sample's log G and exponents) is computed once per fit; a budget then costs
a few array operations in log space, written into one column-major block that the percentile
step reads column by column.
"""

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]


class ChinchillaSampleOptima:
    """For rows of Chinchilla parameters (columns named by `names`: E, A, B, alpha, beta):

    N_opt = G (C/6)^a, D_opt = G^-1 (C/6)^b, with G = (alpha A / (beta B))^(1/(alpha+beta)),
    a = beta/(alpha+beta), b = alpha/(alpha+beta) (Hoffmann et al. 2022, eq. 4).
    """

    def __init__(self, samples: FloatArray, names: tuple[str, ...]) -> None:
        E, A, B, alpha, beta = (
            np.ascontiguousarray(samples[:, names.index(name)])
            for name in ("E", "A", "B", "alpha", "beta")
        )
        self._E, self._A, self._B, self._alpha, self._beta = E, A, B, alpha, beta
        # A resample whose A or B ran to a bound has no interior optimum: its rows come out
        # non-finite or zero (callers drop such rows and say how many), without numpy's warnings.
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            self._log_G = np.log(alpha * A / (beta * B)) / (alpha + beta)
            self._a = beta / (alpha + beta)
            self._b = alpha / (alpha + beta)

    def __len__(self) -> int:
        return len(self._E)

    def at(self, flops: float) -> FloatArray:
        """Rows params, tokens, flops (6ND), loss (nats/token) of each sample's optimum at
        `flops` training FLOPs (C = 6ND); an (n, 4) array stored column by column."""
        log_c6 = float(np.log(flops / 6.0))
        out = np.empty((4, len(self)))
        params, tokens, total, loss = out
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            log_n = self._log_G + self._a * log_c6
            log_d = self._b * log_c6 - self._log_G
            np.exp(log_n, out=params)
            np.exp(log_d, out=tokens)
            np.multiply(params, tokens, out=total)
            total *= 6.0
            np.exp(-self._alpha * log_n, out=loss)
            loss *= self._A
            loss += self._E
            loss += self._B * np.exp(-self._beta * log_d)
        return out.T
