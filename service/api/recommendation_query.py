"""The GET recommendation's query parameters: one set of types for the route and for the
middleware that answers before it (service/api/answer_fastpath.py), so both accept exactly the
same requests."""

from typing import Annotated

from fastapi import Query
from pydantic import BaseModel

from service.api.deps import ExperimentPath
from service.schemas.fits import LawName, MethodName

Flops = Annotated[float, Query(gt=0, allow_inf_nan=False, examples=[1e23])]
Confidence = Annotated[float, Query(ge=0.5, le=0.999, description="Interval level.")]
MaxParams = Annotated[float | None, Query(gt=0, allow_inf_nan=False)]


class RecommendationQuery(BaseModel):
    """What the route reads from a request, validated as the route validates it."""

    name: ExperimentPath
    flops: Flops
    law: LawName = "chinchilla"
    method: MethodName = "parametric"
    max_params: MaxParams = None
    confidence: Confidence = 0.9
