"""What the sync and async clients share: configuration, retries, and each API call as data.

Every operation is built once as a `Call` (method, path, body, how to read the answer); the
clients only differ in how they send it. Creating POSTs get an `Idempotency-Key` when the call is
built, so every retry of that call carries the same key and the server replays the first answer.
"""

from __future__ import annotations

import os
import random
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar

import httpx
from pydantic import BaseModel, TypeAdapter
from tenacity import RetryCallState

from service import __version__
from service.client.errors import ApiError
from service.schemas.catalogue import Hardware, PublishedLaw
from service.schemas.common import Page
from service.schemas.experiments import ExperimentCreate, ExperimentOut, ExperimentPatch
from service.schemas.fits import FitCreate, FitOut, LawName, MethodName
from service.schemas.jobs import (
    AutofillOut,
    AutofillSettings,
    JobOut,
    JobRunSpec,
    JobsCreate,
    JobStatus,
    PlanOut,
    PlanRequest,
)
from service.schemas.keys import KeyCreate, KeyCreated, KeyOut, Scope
from service.schemas.recommendations import (
    BudgetSpec,
    CompareRequest,
    Comparison,
    ConstraintsSpec,
    Recommendation,
    RecommendationRequest,
    SourceSpec,
)
from service.schemas.runs import (
    ImportResult,
    RunBatchResult,
    RunFilter,
    RunIn,
    RunOut,
    RunPatch,
    RunSelection,
)
from service.schemas.sources import MlflowSourceIn, MlflowSourceOut, SourcePatch, SyncResult
from service.schemas.webhooks import DeliveryOut, WebhookCreate, WebhookCreated, WebhookOut

T = TypeVar("T")
Item = TypeVar("Item")
M = TypeVar("M", bound=BaseModel)

DEFAULT_URL = "http://127.0.0.1:8000"
URL_ENV = "SCALING_URL"
API_KEY_ENV = "SCALING_API_KEY"
IDEMPOTENCY_HEADER = "Idempotency-Key"
RETRY_STATUSES = frozenset({502, 503, 504})
# 409 idempotency_in_progress: the same request is still being answered; 429 busy: every
# database connection of the server process is in use. Both pass in a moment.
RETRY_CODES = frozenset({"idempotency_in_progress", "busy"})
RETRY_TRANSPORT_ERRORS = (httpx.NetworkError, httpx.TimeoutException, httpx.RemoteProtocolError)
SLOW_TIMEOUT = 300.0  # imports and fits may take minutes on a big file

ImportFormat = Literal["csv", "jsonl"]
PlotKind = Literal["isoflop", "frontier", "residuals"]
ProgressCallback = Callable[[int, int], None]
# The query of GET /v1/experiments/{name}/runs, under the client's older name.
RunFilters = RunFilter
# Fetches one page of a list by its page token (None: the first).
PageFetch = Callable[[str | None], Page[Item]]
AsyncPageFetch = Callable[[str | None], Awaitable[Page[Item]]]


@dataclass(frozen=True)
class RetryPolicy:
    """Retry 502/503/504, 409 `idempotency_in_progress` (the same request, still being answered:
    the retry gets its answer), 429 `busy` and connection errors: at most `attempts` tries in
    all, waiting the server's Retry-After (capped at `max_wait`) or else an exponential,
    jittered backoff."""

    attempts: int = 4
    backoff: float = 0.5
    max_wait: float = 30.0

    def should_retry(self, exc: BaseException) -> bool:
        if isinstance(exc, ApiError):
            return exc.status in RETRY_STATUSES or exc.code in RETRY_CODES
        return isinstance(exc, RETRY_TRANSPORT_ERRORS)

    def wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome is not None else None
        if isinstance(exc, ApiError) and exc.retry_after is not None:
            return min(exc.retry_after, self.max_wait)
        delay: float = self.backoff * 2.0 ** (state.attempt_number - 1)
        return min(self.max_wait, delay) * (0.5 + random.random() / 2)


NO_RETRY = RetryPolicy(attempts=1)


def resolve_url(url: str | None) -> str:
    return (url or os.environ.get(URL_ENV) or DEFAULT_URL).rstrip("/")


def resolve_api_key(api_key: str | None) -> str | None:
    return api_key or os.environ.get(API_KEY_ENV) or None


def default_headers(api_key: str | None) -> dict[str, str]:
    headers = {"User-Agent": f"scaling-service-client/{__version__}", "Accept": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    return headers


def new_idempotency_key() -> str:
    return f"client-{uuid.uuid4().hex}"


@dataclass
class Call(Generic[T]):
    """One HTTP operation and how to read its successful answer."""

    method: str
    path: str
    parse: Callable[[httpx.Response], T]
    params: dict[str, Any] = field(default_factory=dict)
    json: Any = None
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    timeout: float | None = None
    progress: ProgressCallback | None = None  # upload progress (bytes sent, total)

    def request_kwargs(self) -> dict[str, Any]:
        params = {k: _param(v) for k, v in self.params.items() if v is not None}
        kwargs: dict[str, Any] = {"params": params, "headers": self.headers}
        if self.json is not None:
            kwargs["json"] = self.json
        if self.timeout is not None:
            kwargs["timeout"] = self.timeout
        return kwargs


def _param(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return value


def model(cls: type[M]) -> Callable[[httpx.Response], M]:
    return lambda response: cls.model_validate_json(response.content)


def adapter(kind: Any) -> Callable[[httpx.Response], Any]:
    checker: TypeAdapter[Any] = TypeAdapter(kind)
    return lambda response: checker.validate_json(response.content)


def _none(response: httpx.Response) -> None:
    return None


def _bytes(response: httpx.Response) -> bytes:
    return response.content


def _creating(idempotency_key: str | None) -> dict[str, str]:
    return {IDEMPOTENCY_HEADER: idempotency_key or new_idempotency_key()}


def _dump(value: BaseModel) -> Any:
    return value.model_dump(mode="json", exclude_unset=True)


def _as(cls: type[M], value: M | Mapping[str, Any] | None) -> M:
    if isinstance(value, cls):
        return value
    return cls.model_validate(dict(value or {}))


# -- experiments ---------------------------------------------------------------------------------


def create_experiment(
    name: str,
    description: str,
    param_convention: str,
    flops_formula: str,
    metadata: Mapping[str, Any] | None,
    idempotency_key: str | None,
) -> Call[ExperimentOut]:
    body = ExperimentCreate.model_validate(
        {
            "name": name,
            "description": description,
            "param_convention": param_convention,
            "flops_formula": flops_formula,
            "metadata": dict(metadata or {}),
        }
    )
    return Call(
        "POST",
        "/v1/experiments",
        model(ExperimentOut),
        json=_dump(body),
        headers=_creating(idempotency_key),
    )


def list_experiments(limit: int | None, page_token: str | None) -> Call[Page[ExperimentOut]]:
    return Call(
        "GET",
        "/v1/experiments",
        model(Page[ExperimentOut]),
        params={"limit": limit, "page_token": page_token},
    )


def get_experiment(name: str) -> Call[ExperimentOut]:
    return Call("GET", f"/v1/experiments/{name}", model(ExperimentOut))


def update_experiment(
    name: str, description: str | None, metadata: Mapping[str, Any] | None
) -> Call[ExperimentOut]:
    fields: dict[str, Any] = {}
    if description is not None:
        fields["description"] = description
    if metadata is not None:
        fields["metadata"] = dict(metadata)
    body = ExperimentPatch.model_validate(fields)
    return Call("PATCH", f"/v1/experiments/{name}", model(ExperimentOut), json=_dump(body))


def delete_experiment(name: str, force: bool) -> Call[None]:
    return Call("DELETE", f"/v1/experiments/{name}", _none, params={"force": force or None})


# -- runs ----------------------------------------------------------------------------------------


def add_runs(
    experiment: str, runs: Sequence[RunIn | Mapping[str, Any]], idempotency_key: str | None
) -> Call[RunBatchResult]:
    """Mappings are sent as given (the server validates them and reports rows); RunIn as set."""
    body = [_dump(run) if isinstance(run, RunIn) else dict(run) for run in runs]
    return Call(
        "POST",
        f"/v1/experiments/{experiment}/runs",
        model(RunBatchResult),
        json={"runs": body},
        headers=_creating(idempotency_key),
        timeout=SLOW_TIMEOUT,
    )


def import_runs(
    experiment: str,
    data: str | bytes | Path,
    format: ImportFormat | None,
    idempotency_key: str | None,
    progress: ProgressCallback | None,
    columns: Mapping[str, str] | None = None,
    derive_keys: bool = True,
) -> Call[ImportResult]:
    if isinstance(data, Path):
        if format is None:
            format = "jsonl" if data.suffix.lower() in (".jsonl", ".ndjson") else "csv"
        content = data.read_bytes()
    else:
        content = data.encode() if isinstance(data, str) else data
    fmt: ImportFormat = format or "csv"
    content_type = "text/csv" if fmt == "csv" else "application/x-ndjson"
    return Call(
        "POST",
        f"/v1/experiments/{experiment}/runs:import",
        model(ImportResult),
        params={
            "format": fmt,
            "column": [f"{name}={header}" for name, header in (columns or {}).items()] or None,
            "derive_keys": derive_keys,
        },
        content=content,
        headers={**_creating(idempotency_key), "Content-Type": content_type},
        timeout=SLOW_TIMEOUT,
        progress=progress,
    )


def list_runs(
    experiment: str, filters: RunFilters, limit: int | None, page_token: str | None
) -> Call[Page[RunOut]]:
    params = {**filters.given(), "limit": limit, "page_token": page_token}
    return Call("GET", f"/v1/experiments/{experiment}/runs", model(Page[RunOut]), params=params)


def get_run(run_id: int, include_curve: bool = False) -> Call[RunOut]:
    params = {"include": "curve" if include_curve else None}
    return Call("GET", f"/v1/runs/{run_id}", model(RunOut), params=params)


def set_run_excluded(run_id: int, excluded: bool, reason: str | None) -> Call[RunOut]:
    body = RunPatch(excluded=excluded, reason=reason)
    return Call("PATCH", f"/v1/runs/{run_id}", model(RunOut), json=body.model_dump(mode="json"))


# -- fits ----------------------------------------------------------------------------------------


def create_fit(
    experiment: str, spec: FitCreate | Mapping[str, Any] | None, idempotency_key: str | None
) -> Call[FitOut]:
    return Call(
        "POST",
        f"/v1/experiments/{experiment}/fits",
        model(FitOut),
        json=_dump(_as(FitCreate, spec)),
        headers=_creating(idempotency_key),
        timeout=SLOW_TIMEOUT,
    )


def fit_spec(
    law: LawName | None,
    method: MethodName | None,
    bootstrap: int | None,
    seed: int | None,
    huber_delta: float | None,
    filters: RunSelection | Mapping[str, Any] | None,
    include_excluded: bool | None,
) -> FitCreate:
    given = {
        "law": law,
        "method": method,
        "bootstrap": bootstrap,
        "seed": seed,
        "huber_delta": huber_delta,
        "include_excluded": include_excluded,
        "filters": _dump(_as(RunSelection, filters)) if filters is not None else None,
    }
    return FitCreate.model_validate({k: v for k, v in given.items() if v is not None})


def get_fit(fit_id: int) -> Call[FitOut]:
    return Call("GET", f"/v1/fits/{fit_id}", model(FitOut))


def list_fits(experiment: str, limit: int | None, page_token: str | None) -> Call[Page[FitOut]]:
    return Call(
        "GET",
        f"/v1/experiments/{experiment}/fits",
        model(Page[FitOut]),
        params={"limit": limit, "page_token": page_token},
    )


def current_fit(experiment: str, law: LawName, method: MethodName) -> Call[FitOut]:
    return Call(
        "GET",
        f"/v1/experiments/{experiment}/fits/current",
        model(FitOut),
        params={"law": law, "method": method},
    )


def plot(fit_id: int, kind: PlotKind | str) -> Call[bytes]:
    return Call(
        "GET",
        f"/v1/fits/{fit_id}/plots/{kind}.svg",
        _bytes,
        headers={"Accept": "image/svg+xml"},
        timeout=SLOW_TIMEOUT,
    )


# -- recommendations -----------------------------------------------------------------------------


def recommend(
    source: SourceSpec | Mapping[str, Any],
    budget: BudgetSpec | Mapping[str, Any],
    constraints: ConstraintsSpec | Mapping[str, Any] | None,
    confidence: float,
) -> Call[Recommendation]:
    body = RecommendationRequest(
        source=_as(SourceSpec, source),
        budget=_as(BudgetSpec, budget),
        constraints=_as(ConstraintsSpec, constraints),
        confidence=confidence,
    )
    return Call(
        "POST",
        "/v1/recommendations",
        model(Recommendation),
        json=body.model_dump(mode="json", exclude_none=True),
    )


def recommendation(
    experiment: str,
    flops: float,
    law: LawName,
    method: MethodName,
    max_params: float | None,
    confidence: float,
) -> Call[Recommendation]:
    return Call(
        "GET",
        f"/v1/experiments/{experiment}/recommendation",
        model(Recommendation),
        params={
            "flops": flops,
            "law": law,
            "method": method,
            "max_params": max_params,
            "confidence": confidence,
        },
    )


def frontier(
    experiment: str,
    flops_min: float,
    flops_max: float,
    points: int,
    law: LawName,
    method: MethodName,
    confidence: float,
) -> Call[list[Recommendation]]:
    return Call(
        "GET",
        f"/v1/experiments/{experiment}/frontier",
        adapter(list[Recommendation]),
        params={
            "flops_min": flops_min,
            "flops_max": flops_max,
            "points": points,
            "law": law,
            "method": method,
            "confidence": confidence,
        },
    )


def compare(
    sources: Sequence[SourceSpec | Mapping[str, Any]],
    budget: BudgetSpec | Mapping[str, Any],
    constraints: ConstraintsSpec | Mapping[str, Any] | None,
    confidence: float,
) -> Call[Comparison]:
    body = CompareRequest(
        sources=[_as(SourceSpec, s) for s in sources],
        budget=_as(BudgetSpec, budget),
        constraints=_as(ConstraintsSpec, constraints),
        confidence=confidence,
    )
    return Call(
        "POST",
        "/v1/compare",
        model(Comparison),
        json=body.model_dump(mode="json", exclude_none=True),
    )


def laws() -> Call[list[PublishedLaw]]:
    return Call("GET", "/v1/laws", adapter(list[PublishedLaw]))


def hardware() -> Call[list[Hardware]]:
    return Call("GET", "/v1/hardware", adapter(list[Hardware]))


# -- plans, jobs and the autopilot ---------------------------------------------------------------

TERMINAL_JOB_STATUSES = frozenset({"succeeded", "failed", "cancelled"})


def plan_request(
    target_flops: float,
    budget_flops: float,
    max_flops_per_run: float,
    min_flops_per_run: float | None,
    batch_size: int | None,
    overhead_flops: float | None,
    prior: str | None,
    trainer: Mapping[str, Any] | None = None,
    max_branches_per_run: int | None = None,
    max_runs: int | None = None,
) -> PlanRequest:
    given = {
        "trainer": dict(trainer) if trainer is not None else None,
        "target_flops": target_flops,
        "budget_flops": budget_flops,
        "max_flops_per_run": max_flops_per_run,
        "min_flops_per_run": min_flops_per_run,
        "batch_size": batch_size,
        "overhead_flops": overhead_flops,
        "prior": prior,
        "max_branches_per_run": max_branches_per_run,
        "max_runs": max_runs,
    }
    return PlanRequest.model_validate({k: v for k, v in given.items() if v is not None})


def plan(experiment: str, request: PlanRequest | Mapping[str, Any]) -> Call[PlanOut]:
    return Call(
        "POST",
        f"/v1/experiments/{experiment}/plans",
        model(PlanOut),
        json=_dump(_as(PlanRequest, request)),
        timeout=SLOW_TIMEOUT,
    )


def queue_jobs(
    experiment: str,
    plan: PlanRequest | Mapping[str, Any] | None,
    runs: Sequence[JobRunSpec | Mapping[str, Any]] | None,
    trainer: Mapping[str, Any] | None,
    max_attempts: int | None,
    idempotency_key: str | None,
) -> Call[list[JobOut]]:
    """Exactly one of `plan` and `runs` (checked here, before anything is sent). `trainer`
    fields go to every job: the plan's, or each run's (where the run does not set them)."""
    if (plan is None) == (runs is None):
        raise ValueError("give exactly one of plan, runs")
    fields: dict[str, Any] = {}
    if plan is not None:
        fields["plan"] = _dump(_as(PlanRequest, plan))
        if trainer:
            fields["trainer"] = dict(trainer)
    if runs is not None:
        specs = [_as(JobRunSpec, run) for run in runs]
        fields["runs"] = [
            {**_dump(spec), "trainer": {**(trainer or {}), **spec.trainer}}
            if trainer
            else _dump(spec)
            for spec in specs
        ]
    if max_attempts is not None:
        fields["max_attempts"] = max_attempts
    body = JobsCreate.model_validate(fields)
    return Call(
        "POST",
        f"/v1/experiments/{experiment}/jobs",
        adapter(list[JobOut]),
        json=_dump(body),
        headers=_creating(idempotency_key),
        timeout=SLOW_TIMEOUT,
    )


def list_jobs(
    experiment: str | None,
    status: JobStatus | None,
    origin: str | None,
    limit: int | None,
    page_token: str | None,
) -> Call[Page[JobOut]]:
    return Call(
        "GET",
        "/v1/jobs",
        model(Page[JobOut]),
        params={
            "experiment": experiment,
            "status": status,
            "origin": origin,
            "limit": limit,
            "page_token": page_token,
        },
    )


def get_job(job_id: int) -> Call[JobOut]:
    return Call("GET", f"/v1/jobs/{job_id}", model(JobOut))


def cancel_job(job_id: int) -> Call[JobOut]:
    return Call("POST", f"/v1/jobs/{job_id}:cancel", model(JobOut))


def get_autofill(experiment: str) -> Call[AutofillOut]:
    return Call("GET", f"/v1/experiments/{experiment}/autofill", model(AutofillOut))


def set_autofill(
    experiment: str, settings: AutofillSettings | Mapping[str, Any]
) -> Call[AutofillOut]:
    body = _as(AutofillSettings, settings)
    return Call(
        "PUT",
        f"/v1/experiments/{experiment}/autofill",
        model(AutofillOut),
        json=body.model_dump(mode="json"),
    )


# -- sources -------------------------------------------------------------------------------------


def create_source(
    experiment: str, source: MlflowSourceIn | Mapping[str, Any], idempotency_key: str | None
) -> Call[MlflowSourceOut]:
    body = _as(MlflowSourceIn, source)
    return Call(
        "POST",
        f"/v1/experiments/{experiment}/sources",
        model(MlflowSourceOut),
        json=body.model_dump(mode="json"),
        headers=_creating(idempotency_key),
    )


def list_sources(experiment: str) -> Call[list[MlflowSourceOut]]:
    return Call("GET", f"/v1/experiments/{experiment}/sources", adapter(list[MlflowSourceOut]))


def get_source(source_id: int) -> Call[MlflowSourceOut]:
    return Call("GET", f"/v1/sources/{source_id}", model(MlflowSourceOut))


def update_source(source_id: int, patch: SourcePatch | Mapping[str, Any]) -> Call[MlflowSourceOut]:
    body = _as(SourcePatch, patch)
    # Only the fields given: a null the caller sent clears the option, one left out keeps it.
    return Call(
        "PATCH",
        f"/v1/sources/{source_id}",
        model(MlflowSourceOut),
        json=body.model_dump(mode="json", exclude_unset=True),
    )


def delete_source(source_id: int) -> Call[None]:
    return Call("DELETE", f"/v1/sources/{source_id}", _none)


def sync_source(source_id: int, full: bool) -> Call[SyncResult]:
    # A sync reads a whole MLflow search: give it the time a slow tracking server needs.
    return Call(
        "POST",
        f"/v1/sources/{source_id}:sync",
        model(SyncResult),
        params={"full": full or None},
        timeout=300.0,
    )


# -- webhooks ------------------------------------------------------------------------------------


def create_webhook(
    webhook: WebhookCreate | Mapping[str, Any], idempotency_key: str | None
) -> Call[WebhookCreated]:
    body = _as(WebhookCreate, webhook)
    json_body = body.model_dump(mode="json", exclude={"secret"})
    if body.secret is not None:
        json_body["secret"] = body.secret.get_secret_value()
    return Call(
        "POST",
        "/v1/webhooks",
        model(WebhookCreated),
        json=json_body,
        headers=_creating(idempotency_key),
    )


def list_webhooks(experiment: str | None) -> Call[list[WebhookOut]]:
    return Call("GET", "/v1/webhooks", adapter(list[WebhookOut]), params={"experiment": experiment})


def get_webhook(webhook_id: int) -> Call[WebhookOut]:
    return Call("GET", f"/v1/webhooks/{webhook_id}", model(WebhookOut))


def delete_webhook(webhook_id: int) -> Call[None]:
    return Call("DELETE", f"/v1/webhooks/{webhook_id}", _none)


def list_webhook_deliveries(
    webhook_id: int, limit: int | None, page_token: str | None
) -> Call[Page[DeliveryOut]]:
    return Call(
        "GET",
        f"/v1/webhooks/{webhook_id}/deliveries",
        model(Page[DeliveryOut]),
        params={"limit": limit, "page_token": page_token},
    )


def test_webhook(webhook_id: int) -> Call[DeliveryOut]:
    return Call("POST", f"/v1/webhooks/{webhook_id}:test", model(DeliveryOut))


# -- keys and health -----------------------------------------------------------------------------


def list_keys() -> Call[list[KeyOut]]:
    return Call("GET", "/v1/keys", adapter(list[KeyOut]))


def create_key(name: str, scopes: Sequence[Scope], idempotency_key: str | None) -> Call[KeyCreated]:
    body = KeyCreate(name=name, scopes=list(scopes))
    return Call(
        "POST",
        "/v1/keys",
        model(KeyCreated),
        json=body.model_dump(mode="json"),
        headers=_creating(idempotency_key),
    )


def revoke_key(prefix: str) -> Call[KeyOut]:
    return Call("DELETE", f"/v1/keys/{prefix}", model(KeyOut))


def health() -> Call[dict[str, Any]]:
    return Call("GET", "/readyz", adapter(dict[str, Any]))


def upload_chunks(content: bytes, progress: ProgressCallback, size: int = 64 * 1024) -> Any:
    """The body in pieces, reporting bytes sent (a fresh generator per attempt)."""
    total = len(content)

    def chunks() -> Any:
        progress(0, total)
        for start in range(0, total, size):
            yield content[start : start + size]
            progress(min(start + size, total), total)

    return chunks()


def upload_chunks_async(content: bytes, progress: ProgressCallback, size: int = 64 * 1024) -> Any:
    """`upload_chunks` for the async client."""

    async def chunks() -> Any:
        for chunk in upload_chunks(content, progress, size):
            yield chunk

    return chunks()
