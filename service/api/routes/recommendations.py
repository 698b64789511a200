"""Budget questions: recommendations, the frontier, side-by-side comparisons, presets, hardware."""

from typing import Annotated

import numpy as np
from fastapi import APIRouter, Query, Response

from service.api.deps import (
    AnswerCacheDep,
    ExperimentDep,
    ExperimentPath,
    FitCacheDep,
    Reader,
    SessionDep,
    SessionFactoryDep,
)
from service.api.recommendation_query import Confidence, Flops, MaxParams
from service.errors import InvalidInputError
from service.fits.answers import recommendation_body
from service.fits.recommend import answer, comparison, resolve
from service.scaling import CATALOGUE, list_presets
from service.schemas.catalogue import Hardware, PublishedLaw
from service.schemas.common import errors
from service.schemas.fits import LawName, MethodName
from service.schemas.recommendations import (
    BudgetSpec,
    CompareRequest,
    Comparison,
    ConstraintsSpec,
    Recommendation,
    RecommendationRequest,
    SourceSpec,
)

router = APIRouter(tags=["recommendations"])


@router.post(
    "/v1/recommendations",
    summary="How to spend a budget",
    description="For a budget in FLOPs, GPU-hours (gpu + mfu), dollars (gpu + mfu + "
    "usd_per_gpu_hour) or a target loss, and optional constraints (max params/tokens, unique "
    "tokens, lifetime inference tokens), the compute-optimal params and tokens, the predicted "
    "loss with bootstrap intervals, GPU-hours and cost, a model shape, the law and fit used, and "
    "warnings (extrapolation, stale fit, repeated data). The inverse questions are budgets too: "
    "`params` (the compute-optimal FLOPs and tokens for a model size), `tokens` (the model and "
    "FLOPs for an amount of unique data) and `target_loss`. With inference tokens a FLOP budget "
    "pays for training and inference (`budget_binds: total`) or training only (`training`); "
    "the answer gives `total_flops` and the compute-optimal model of equal loss. Needs `read`.",
    responses=errors(404),
)
def recommend(
    body: RecommendationRequest, session: SessionDep, cache: FitCacheDep, _: Reader
) -> Recommendation:
    return answer(
        resolve(session, body.source, cache), body.budget, body.constraints, body.confidence
    )


@router.get(
    "/v1/experiments/{name}/recommendation",
    summary="Recommendation at a FLOP budget (GET form)",
    description="The common case of POST /v1/recommendations: the experiment's current fit at "
    "`flops` training FLOPs. Answers are kept for `SCALING_ANSWER_CACHE_SECONDS` (writes through "
    "this server drop them at once). Needs `read`.",
    response_model=Recommendation,
    responses=errors(404),
)
async def get_recommendation(
    name: ExperimentPath,
    answers: AnswerCacheDep,
    sessions: SessionFactoryDep,
    cache: FitCacheDep,
    _: Reader,
    flops: Flops,
    law: LawName = "chinchilla",
    method: MethodName = "parametric",
    max_params: MaxParams = None,
    confidence: Confidence = 0.9,
) -> Response:
    # async, and no database on a cache hit: this is the endpoint clients poll (most requests
    # whose caller's key is cached are answered before they get here: answer_fastpath.py).
    body = await recommendation_body(
        answers,
        sessions,
        cache,
        name,
        law=law,
        method=method,
        flops=flops,
        max_params=max_params,
        confidence=confidence,
    )
    return Response(body, media_type="application/json")


@router.get(
    "/v1/experiments/{name}/frontier",
    summary="The compute-optimal frontier",
    description="Recommendations at `points` log-spaced FLOP budgets from `flops_min` to "
    "`flops_max` under the experiment's current fit: N_opt, D_opt and loss with bands. "
    "Needs `read`.",
    responses=errors(404),
)
def get_frontier(
    experiment: ExperimentDep,
    session: SessionDep,
    cache: FitCacheDep,
    _: Reader,
    flops_min: Annotated[float, Query(gt=0, allow_inf_nan=False, examples=[1e18])],
    flops_max: Annotated[float, Query(gt=0, allow_inf_nan=False, examples=[1e25])],
    points: Annotated[int, Query(ge=2, le=100)] = 20,
    law: LawName = "chinchilla",
    method: MethodName = "parametric",
    confidence: Confidence = 0.9,
) -> list[Recommendation]:
    if flops_min >= flops_max:
        raise InvalidInputError("flops_min must be below flops_max", field="flops_min")
    resolved = resolve(
        session, SourceSpec(experiment=experiment.name, law=law, method=method), cache
    )
    return [
        answer(resolved, BudgetSpec(flops=float(c)), ConstraintsSpec(), confidence)
        for c in np.geomspace(flops_min, flops_max, points)
    ]


@router.post(
    "/v1/compare",
    summary="Compare fits and presets at one budget",
    description="Each source's recommendation at the same budget and constraints, side by side, "
    "with the conventions it assumes (total vs non-embedding params, C = 6ND vs Kaplan's C_min); "
    "a source that cannot answer carries its error instead. `disagreement` states how far apart "
    "the answers are: max/min of params, tokens and FLOPs, the range of predicted loss, whether "
    "the bootstrap intervals overlap, and the caveats. Needs `read`.",
    responses=errors(),
)
def compare(body: CompareRequest, session: SessionDep, cache: FitCacheDep, _: Reader) -> Comparison:
    return comparison(session, body, cache)


@router.get(
    "/v1/laws",
    summary="Published laws (presets)",
    description='Laws usable without data, e.g. `{"source": {"preset": "epoch-2024"}}`, with '
    "their parameters, source paper and parameter convention. Needs `read`.",
    responses=errors(),
)
def list_laws(_: Reader) -> list[PublishedLaw]:
    return [PublishedLaw.model_validate(preset.to_json()) for preset in list_presets()]


@router.get(
    "/v1/hardware",
    summary="Accelerators for GPU-hour and money budgets",
    description="Dense bf16 peak FLOP/s of each catalogued accelerator, with its source. "
    "Needs `read`.",
    responses=errors(),
)
def list_hardware(_: Reader) -> list[Hardware]:
    return [
        Hardware(
            name=a.name, peak_bf16_flops=a.peak_bf16_flops, memory_gb=a.memory_gb, source=a.source
        )
        for a in CATALOGUE.values()
    ]
