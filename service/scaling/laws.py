"""Scaling-law forms as values.

Conventions: ``params`` N = parameter count (chinchilla/data_constrained: total incl. embeddings;
kaplan: non-embedding), ``tokens`` D = training tokens, ``unique_tokens`` U_D = distinct tokens
available, loss in nats/token. Training compute C = 6 N D FLOPs.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np
from numpy.typing import ArrayLike, NDArray

from service.scaling.errors import UnknownNameError

FloatArray = NDArray[np.float64]


def as_plain_floats(value: object) -> None:
    """Store every field of a frozen dataclass as a Python float (not a numpy scalar)."""
    for f in fields(value):  # type: ignore[arg-type]
        object.__setattr__(value, f.name, float(getattr(value, f.name)))


@runtime_checkable
class Law(Protocol):
    """A loss law L(N, D[, U_D]) in nats/token."""

    name: ClassVar[str]
    param_names: ClassVar[tuple[str, ...]]

    def predict(
        self, params: ArrayLike, tokens: ArrayLike, *, unique_tokens: ArrayLike | None = None
    ) -> FloatArray: ...

    def values(self) -> tuple[float, ...]: ...

    def to_json(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Chinchilla:
    """L = E + A / N^alpha + B / D^beta (Hoffmann et al. 2022, eq. 2)."""

    E: float
    A: float
    B: float
    alpha: float
    beta: float

    name: ClassVar[str] = "chinchilla"
    param_names: ClassVar[tuple[str, ...]] = ("E", "A", "B", "alpha", "beta")

    def __post_init__(self) -> None:
        as_plain_floats(self)

    def predict(
        self, params: ArrayLike, tokens: ArrayLike, *, unique_tokens: ArrayLike | None = None
    ) -> FloatArray:
        N = np.asarray(params, dtype=np.float64)
        D = np.asarray(tokens, dtype=np.float64)
        return np.asarray(self.E + self.A * N**-self.alpha + self.B * D**-self.beta)

    def values(self) -> tuple[float, ...]:
        return (self.E, self.A, self.B, self.alpha, self.beta)

    @property
    def a(self) -> float:
        """Exponent of N_opt ~ C^a on the C = 6ND frontier."""
        return self.beta / (self.alpha + self.beta)

    @property
    def b(self) -> float:
        """Exponent of D_opt ~ C^b on the C = 6ND frontier."""
        return self.alpha / (self.alpha + self.beta)

    @property
    def G(self) -> float:  # noqa: N802 (the paper's symbol)
        """N_opt(C) = G (C/6)^a (Hoffmann et al. eq. 4)."""
        return float(
            (self.alpha * self.A / (self.beta * self.B)) ** (1.0 / (self.alpha + self.beta))
        )

    def to_json(self) -> dict[str, Any]:
        return {"law": self.name, **vars(self)}  # flat floats: no deep copy needed


@dataclass(frozen=True)
class Kaplan:
    """L = [ (N_c/N)^(alpha_N/alpha_D) + D_c/D ]^alpha_D (Kaplan et al. 2020, eq. 1.5).

    N counts non-embedding parameters.
    """

    N_c: float
    D_c: float
    alpha_N: float  # noqa: N815 (JSON name)
    alpha_D: float  # noqa: N815 (JSON name)

    name: ClassVar[str] = "kaplan"
    param_names: ClassVar[tuple[str, ...]] = ("N_c", "D_c", "alpha_N", "alpha_D")

    def __post_init__(self) -> None:
        as_plain_floats(self)

    def predict(
        self, params: ArrayLike, tokens: ArrayLike, *, unique_tokens: ArrayLike | None = None
    ) -> FloatArray:
        N = np.asarray(params, dtype=np.float64)
        D = np.asarray(tokens, dtype=np.float64)
        ratio = self.alpha_N / self.alpha_D
        return np.asarray(((self.N_c / N) ** ratio + self.D_c / D) ** self.alpha_D)

    def values(self) -> tuple[float, ...]:
        return (self.N_c, self.D_c, self.alpha_N, self.alpha_D)

    def to_json(self) -> dict[str, Any]:
        return {"law": self.name, **vars(self)}  # flat floats: no deep copy needed


@dataclass(frozen=True)
class DataConstrained:
    """Chinchilla with effective data and parameters under repetition (Muennighoff et al. 2023).

    D' = U_D + U_D R_D* (1 - exp(-R_D/R_D*)), R_D = D/U_D - 1 (epochs beyond the first);
    U_N = min(N, N_opt(U_D)), N' = U_N + U_N R_N* (1 - exp(-R_N/R_N*)), R_N = N/U_N - 1;
    L = E + A/N'^alpha + B/D'^beta. Without ``unique_tokens`` no data is repeated.
    """

    E: float
    A: float
    B: float
    alpha: float
    beta: float
    R_D_star: float
    R_N_star: float

    name: ClassVar[str] = "data_constrained"
    param_names: ClassVar[tuple[str, ...]] = (
        "E",
        "A",
        "B",
        "alpha",
        "beta",
        "R_D_star",
        "R_N_star",
    )

    def __post_init__(self) -> None:
        as_plain_floats(self)

    @property
    def base(self) -> Chinchilla:
        return Chinchilla(self.E, self.A, self.B, self.alpha, self.beta)

    def effective(
        self, params: ArrayLike, tokens: ArrayLike, *, unique_tokens: ArrayLike | None = None
    ) -> tuple[FloatArray, FloatArray]:
        """Effective (N', D') after discounting repeated data and excess parameters."""
        N = np.asarray(params, dtype=np.float64)
        D = np.asarray(tokens, dtype=np.float64)
        U_D = D if unique_tokens is None else np.minimum(np.asarray(unique_tokens, float), D)
        R_D = D / U_D - 1.0
        D_eff = U_D + U_D * self.R_D_star * -np.expm1(-R_D / self.R_D_star)
        base = self.base
        # One-epoch compute-optimal size for U_D tokens: N = G (D G)^(a/b).
        N_opt_U = base.G * (U_D * base.G) ** (base.a / base.b)
        U_N = np.minimum(N, N_opt_U)
        R_N = N / U_N - 1.0
        N_eff = U_N + U_N * self.R_N_star * -np.expm1(-R_N / self.R_N_star)
        return np.asarray(N_eff), np.asarray(D_eff)

    def predict(
        self, params: ArrayLike, tokens: ArrayLike, *, unique_tokens: ArrayLike | None = None
    ) -> FloatArray:
        N_eff, D_eff = self.effective(params, tokens, unique_tokens=unique_tokens)
        return self.base.predict(N_eff, D_eff)

    def values(self) -> tuple[float, ...]:
        return (self.E, self.A, self.B, self.alpha, self.beta, self.R_D_star, self.R_N_star)

    def to_json(self) -> dict[str, Any]:
        return {"law": self.name, **vars(self)}  # flat floats: no deep copy needed


AnyLaw = Chinchilla | Kaplan | DataConstrained
LAWS: dict[str, type[Chinchilla] | type[Kaplan] | type[DataConstrained]] = {
    "chinchilla": Chinchilla,
    "kaplan": Kaplan,
    "data_constrained": DataConstrained,
}


def law_class(name: str) -> type[Chinchilla] | type[Kaplan] | type[DataConstrained]:
    try:
        return LAWS[name]
    except KeyError:
        raise UnknownNameError(kind="law", name=name, known=sorted(LAWS)) from None


def law_from_json(data: dict[str, Any]) -> AnyLaw:
    cls = law_class(str(data["law"]))
    return cls(*(float(data[k]) for k in cls.param_names))
