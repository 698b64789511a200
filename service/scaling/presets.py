"""Published laws, usable without data.

max_flops is the largest training run behind the fit (FLOPs) where the paper states it; None
where it is not recorded here, in which case no extrapolation factor can be given.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from service.scaling.errors import UnknownNameError
from service.scaling.laws import AnyLaw, Chinchilla, DataConstrained, Kaplan

PF_DAY = 1e15 * 86400.0  # FLOPs in one petaflop/s-day


@dataclass(frozen=True)
class PowerRule:
    """A published compute-efficient allocation N = coefficient x (share x C / unit)^exponent."""

    coefficient: float
    exponent: float
    unit: float  # FLOPs
    share: float  # of the budget C that the rule's compute means
    statement: str  # the rule and its conventions, in words

    def params(self, flops: float) -> float:
        return float(self.coefficient * (self.share * flops / self.unit) ** self.exponent)


# Kaplan et al. 2020 eq. 1.7 / Fig. 14: N_opt = 1.3e9 (C_min / PF-day)^0.73, N non-embedding.
# C_min is the compute of their compute-efficient frontier; Hoffmann et al. 2022 App. D.4 read
# it as C_min = C / 2 of a budget C (Kaplan's runs stop well before convergence).
KAPLAN_RULE = PowerRule(
    coefficient=1.3e9,
    exponent=0.73,
    unit=PF_DAY,
    share=0.5,
    statement="Kaplan et al. 2020's compute-efficient rule N = 1.3e9 x (C_min / 1 PF-day)^0.73: "
    "N non-embedding parameters, 1 PF-day = 8.64e19 FLOPs, C_min = C/2 as Hoffmann et al. 2022 "
    "App. D.4 read it; D = C / 6N; the loss is the preset's L(N, D) at that point",
)


@dataclass(frozen=True)
class Preset:
    name: str
    law: AnyLaw
    source: str
    params_convention: str  # "total" or "non-embedding"
    max_flops: float | None
    notes: str = ""
    # A published allocation rule that answers unconstrained budgets instead of min L(N, D).
    rule: PowerRule | None = None
    # The data and tokenizer its loss is measured on: losses on different ones do not compare.
    data: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "law": self.law.to_json(),
            "source": self.source,
            "params_convention": self.params_convention,
            "max_flops": self.max_flops,
            "notes": self.notes,
        }


# Chinchilla (70B params, 1.4T tokens) used 5.76e23 FLOPs (Hoffmann et al. Table 3).
_CHINCHILLA_MAX = 5.76e23
# Largest run in Epoch's extraction of Figure 4 (shared/data/epoch_chinchilla_svg_extracted_data).
_EPOCH_MAX = 1.30e22
# Epoch refitted Chinchilla's own points, so all three share its data and tokenizer.
_MASSIVETEXT = "MassiveText, SentencePiece (Chinchilla)"

PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            "chinchilla-2022",
            Chinchilla(E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28),
            "Hoffmann et al. 2022, arXiv 2203.15556, eq. 10 (rounded)",
            "total",
            _CHINCHILLA_MAX,
            data=_MASSIVETEXT,
        ),
        Preset(
            "chinchilla-2022-tex",
            Chinchilla(
                E=float(np.exp(0.5267228)),
                A=float(np.exp(6.0073404)),
                B=float(np.exp(6.0179186)),
                alpha=0.33917084,
                beta=0.2849083,
            ),
            "Hoffmann et al. 2022 TeX source, as quoted by Besiroglu et al. 2024",
            "total",
            _CHINCHILLA_MAX,
            data=_MASSIVETEXT,
        ),
        Preset(
            "epoch-2024",
            Chinchilla(E=1.8172, A=482.01, B=2085.43, alpha=0.3478, beta=0.3658),
            "Besiroglu et al. 2024, arXiv 2404.10102 (replication of Approach 3)",
            "total",
            _EPOCH_MAX,
            data=_MASSIVETEXT,
        ),
        Preset(
            "kaplan-2020",
            Kaplan(N_c=6.4e13, D_c=1.8e13, alpha_N=0.076, alpha_D=0.103),
            "Kaplan et al. 2020, arXiv 2001.08361, Table 2",
            "non-embedding",
            None,
            "N excludes embeddings; loss on WebText2 (nats/token); allocations follow Kaplan's "
            "own rule N = 1.3e9 (C/2 / 1 PF-day)^0.73, not the minimum of L(N, D)",
            KAPLAN_RULE,
            data="WebText2, GPT-2 tokenizer",
        ),
        Preset(
            "muennighoff-2023",
            DataConstrained(
                E=float(np.exp(0.6254804)),
                A=float(np.exp(6.255414)),
                B=float(np.exp(7.3049974)),
                alpha=0.3526596,
                beta=0.3526596,
                R_D_star=15.387756,
                R_N_star=5.309743,
            ),
            "Muennighoff et al. 2023, arXiv 2305.16264 (fitted on C4)",
            "total",
            None,
            "pass unique_tokens to model repeated data",
            data="C4, GPT-2 tokenizer",
        ),
    )
}


def preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise UnknownNameError(kind="preset", name=name, known=sorted(PRESETS)) from None


def list_presets() -> list[Preset]:
    return list(PRESETS.values())
