"""What the service knows without data: published laws (presets) and accelerators."""

from pydantic import BaseModel, ConfigDict, Field

from service.schemas.fits import LawName


class LawParameters(BaseModel):
    """A law by name with its parameters beside it: `{"law": "chinchilla", "E": 1.69, ...}`."""

    model_config = ConfigDict(extra="allow")
    __pydantic_extra__: dict[str, float] = Field(init=False)

    law: LawName

    @property
    def parameters(self) -> dict[str, float]:
        """The parameters alone, by name (E, A, B, alpha, beta; N_c, D_c, alpha_N, ...)."""
        return dict(self.model_extra or {})


class PublishedLaw(BaseModel):
    """A preset of GET /v1/laws, usable as `{"source": {"preset": name}}`."""

    name: str
    law: LawParameters
    source: str = Field(description="The paper and table or equation the values come from.")
    params_convention: str = Field(description="What N counts: total or non-embedding.")
    max_flops: float | None = Field(description="The largest budget the law was fitted on.")
    notes: str


class Hardware(BaseModel):
    """An accelerator of GET /v1/hardware, for GPU-hour and money budgets."""

    name: str
    peak_bf16_flops: float = Field(description="Dense bf16 peak, FLOP/s.")
    memory_gb: float
    source: str
