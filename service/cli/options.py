"""Options declared once for the offline, server and remote commands."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

import typer

from service.schemas.keys import Scope

JsonFlag = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
PresetOption = Annotated[
    str | None,
    typer.Option("--preset", help="A published law by name, e.g. chinchilla-2022 (`remote laws`)."),
]


class ScopeName(StrEnum):
    """A key's scope as a repeatable option (typer takes no list of Literal)."""

    read = "read"
    write = "write"
    admin = "admin"


SCOPES: dict[ScopeName, Scope] = {
    ScopeName.read: "read",
    ScopeName.write: "write",
    ScopeName.admin: "admin",
}

ScopeOption = Annotated[list[ScopeName], typer.Option(help="Repeatable.")]

ParamsBudgetOption = Annotated[
    float | None,
    typer.Option(
        "--params",
        help="Inverse question: the compute-optimal FLOPs and tokens for this model size.",
    ),
]
TokensBudgetOption = Annotated[
    float | None,
    typer.Option(
        "--tokens",
        help="Inverse question: the compute-optimal model and FLOPs for this much unique data.",
    ),
]
BudgetBindsOption = Annotated[
    Literal["total", "training"],
    typer.Option(
        help="With --inference-tokens: the budget pays for training and inference (total) or "
        "training only."
    ),
]

# The constraints and interval level of every budget question (offline and remote recommend and
# compare).
MaxParamsOption = Annotated[float | None, typer.Option(help="Largest model, params.")]
MaxTokensOption = Annotated[float | None, typer.Option(help="Most training tokens.")]
UniqueTokensOption = Annotated[
    float | None, typer.Option(help="Unique tokens available (repeats beyond them cost loss).")
]
InferenceTokensOption = Annotated[float, typer.Option(help="Lifetime inference tokens.")]
ConfidenceOption = Annotated[float, typer.Option(help="Interval level.")]
TargetLossOption = Annotated[float | None, typer.Option(help="Target loss, nats/token.")]
