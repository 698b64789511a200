"""Training runs as arrays, validated once at the boundary of the core."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray

from service.scaling.errors import InvalidDataError

FloatArray = NDArray[np.float64]


def _column(name: str, values: ArrayLike | None, n: int | None) -> FloatArray | None:
    if values is None:
        return None
    arr = np.asarray(values, dtype=np.float64).ravel()
    if n is not None and arr.size != n:
        raise InvalidDataError(column=name, rows=f"length {arr.size} != {n}")
    bad = np.flatnonzero(~np.isfinite(arr) | (arr <= 0))
    if bad.size:
        raise InvalidDataError(column=name, rows=bad[:20].tolist())
    return arr


@dataclass(frozen=True)
class RunArrays:
    """Final (or intermediate, for envelope fits) measurements of training runs.

    params: parameter count N; tokens: training tokens D; loss: nats/token;
    flops: training FLOPs (default C = 6 N D); unique_tokens: distinct tokens U_D (data repeated
    when D > U_D); budget: nominal IsoFLOP budget of the row (FLOPs), if the sweep has one;
    run_id: which run a row belongs to when rows are points on loss curves (envelope fits);
    flags: rows marked by the caller (e.g. quality control); kept, reported, never dropped here.
    """

    params: FloatArray
    tokens: FloatArray
    loss: FloatArray
    flops: FloatArray = field(default_factory=lambda: np.empty(0))
    unique_tokens: FloatArray | None = None
    budget: FloatArray | None = None
    run_id: NDArray[np.int64] | None = None
    flags: NDArray[np.bool_] | None = None

    @classmethod
    def from_arrays(
        cls,
        params: ArrayLike,
        tokens: ArrayLike,
        loss: ArrayLike,
        flops: ArrayLike | None = None,
        unique_tokens: ArrayLike | None = None,
        budget: ArrayLike | None = None,
        run_id: ArrayLike | None = None,
        flags: ArrayLike | None = None,
    ) -> RunArrays:
        N = _column("params", params, None)
        assert N is not None
        n = N.size
        D = _column("tokens", tokens, n)
        L = _column("loss", loss, n)
        assert D is not None
        assert L is not None
        C = _column("flops", flops, n)
        return cls(
            params=N,
            tokens=D,
            loss=L,
            flops=6.0 * N * D if C is None else C,
            unique_tokens=_column("unique_tokens", unique_tokens, n),
            budget=_column("budget", budget, n),
            run_id=None if run_id is None else np.asarray(run_id, dtype=np.int64).ravel(),
            flags=None if flags is None else np.asarray(flags, dtype=bool).ravel(),
        )

    def __post_init__(self) -> None:
        if self.flops.size == 0 and self.params.size:
            object.__setattr__(self, "flops", 6.0 * self.params * self.tokens)

    def __len__(self) -> int:
        return int(self.params.size)

    def take(self, index: ArrayLike) -> RunArrays:
        idx = np.asarray(index)

        def sub(a: NDArray[np.generic] | None) -> NDArray[np.generic] | None:
            return None if a is None else a[idx]

        return RunArrays(
            params=self.params[idx],
            tokens=self.tokens[idx],
            loss=self.loss[idx],
            flops=self.flops[idx],
            unique_tokens=sub(self.unique_tokens),  # type: ignore[arg-type]
            budget=sub(self.budget),  # type: ignore[arg-type]
            run_id=sub(self.run_id),  # type: ignore[arg-type]
            flags=sub(self.flags),  # type: ignore[arg-type]
        )


def group_budgets(flops: FloatArray, rel_tol: float = 0.1) -> NDArray[np.int64]:
    """Label rows whose FLOPs lie within ``rel_tol`` of a neighbour's as one budget (0, 1, ...)."""
    order = np.argsort(flops)
    logc = np.log(flops[order])
    new_group = np.concatenate([[0], (np.diff(logc) > np.log1p(rel_tol)).astype(np.int64)])
    labels = np.empty(flops.size, dtype=np.int64)
    labels[order] = np.cumsum(new_group)
    return labels


def budget_labels(runs: RunArrays, rel_tol: float = 0.1) -> NDArray[np.int64]:
    """Budget group of each row: the nominal budget when given, else FLOPs within tolerance."""
    if runs.budget is not None:
        _, labels = np.unique(runs.budget, return_inverse=True)
        return np.asarray(labels, dtype=np.int64)
    return group_budgets(runs.flops, rel_tol)
