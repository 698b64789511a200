"""Eq. 4's compute-optimal allocation for every bootstrap sample of a Chinchilla fit at once.

Every uncached recommendation from a fit asks this for a thousand samples. What does not depend
on the budget (each sample's log G and exponents) is computed once per fit; a budget then costs
a handful of array operations in log space, each over both of N and D at once (numpy lets go
of the GIL in each call on arrays this long: every call is a chance for a busy event loop to
take it from the thread computing the answer).
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
            samples[:, names.index(name)] for name in ("E", "A", "B", "alpha", "beta")
        )
        # A resample whose A or B ran to a bound has no interior optimum: its rows come out
        # non-finite or zero (callers drop such rows and say how many), without numpy's warnings.
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            log_G = np.log(alpha * A / (beta * B)) / (alpha + beta)
            # Rows: log N = log G + a log(C/6), log D = -log G + b log(C/6).
            self._intercepts = np.stack([log_G, -log_G])
            self._slopes = np.stack([beta, alpha]) / (alpha + beta)
        self._exponents = -np.stack([alpha, beta])  # loss terms: A N^-alpha, B D^-beta
        self._coefficients = np.stack([A, B])
        self._E = np.ascontiguousarray(E)

    def __len__(self) -> int:
        return len(self._E)

    def at(self, flops: float) -> FloatArray:
        """Rows params, tokens, flops (6ND), loss (nats/token) of each sample's optimum at
        `flops` training FLOPs (C = 6ND); an (n, 4) array stored column by column."""
        out = np.empty((4, len(self)))
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            logs = self._slopes * float(np.log(flops / 6.0))
            logs += self._intercepts
            np.exp(logs, out=out[:2])
            np.multiply(out[0], out[1], out=out[2])
            out[2] *= 6.0
            logs *= self._exponents
            terms = np.exp(logs, out=logs)
            terms *= self._coefficients
            np.add(terms[0], terms[1], out=out[3])
            out[3] += self._E
        return out.T
