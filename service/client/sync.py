# Generated from aio.py by scripts/make_sync_client.py (`make client`): do not edit.
"""The client of scaling-service: every API call a method, typed, with safe retries.

aio.py is the one source of both clients: `AsyncScalingClient` there, and `ScalingClient` in
sync.py, generated from it by `scripts/make_sync_client.py` (`make client`): edit aio.py.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from time import sleep
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx
from tenacity import Retrying, retry_if_exception, stop_after_attempt

from service.client import core
from service.client.core import (
    Call,
    ImportFormat,
    PageFetch,
    PlotKind,
    ProgressCallback,
    RetryPolicy,
    RunFilters,
)
from service.client.errors import FitFailedError, error_from_response
from service.schemas.catalogue import Hardware, PublishedLaw
from service.schemas.common import Page
from service.schemas.experiments import ExperimentOut
from service.schemas.fits import FitCreate, FitOut, LawName, MethodName
from service.schemas.jobs import (
    AutofillOut,
    AutofillSettings,
    JobOut,
    JobRunSpec,
    JobStatus,
    PlanOut,
    PlanRequest,
)
from service.schemas.keys import KeyCreated, KeyOut, Scope
from service.schemas.recommendations import (
    BudgetSpec,
    Comparison,
    ConstraintsSpec,
    Recommendation,
    SourceSpec,
)
from service.schemas.runs import ImportResult, RunBatchResult, RunIn, RunOut, RunSelection
from service.schemas.sources import MlflowSourceIn, MlflowSourceOut, SourcePatch, SyncResult
from service.schemas.webhooks import DeliveryOut, WebhookCreate, WebhookCreated, WebhookOut

T = TypeVar("T")
Item = TypeVar("Item")


def iterate_pages(fetch: PageFetch[Item]) -> Iterator[Item]:
    """Every item of every page, following `next_page_token` to the end."""
    token: str | None = None
    while True:
        page = fetch(token)
        yield from page.items
        token = page.next_page_token
        if token is None:
            return


class ScalingClient:
    """A client of scaling-service (`AsyncScalingClient`'s methods are awaited).

    `url` defaults to `$SCALING_URL` or http://127.0.0.1:8000, `api_key` to `$SCALING_API_KEY`.
    `transport` or a whole `http_client` (whose timeout then applies) replace the HTTP layer.
    Errors raise `ApiError` subclasses (`NotFoundError`, `ConflictError`, `ValidationError`, ...);
    502/503/504 and connection errors are retried per `retry` (honouring Retry-After), and POSTs
    that create something carry an Idempotency-Key, so a retry never creates twice.
    """

    def __init__(
        self,
        url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
        http_client: httpx.Client | None = None,
    ) -> None:
        self.url = core.resolve_url(url)
        self.retry = retry or RetryPolicy()
        self._owns_http = http_client is None  # a given http_client's own timeout applies
        self._http = http_client or httpx.Client(
            base_url=self.url, timeout=timeout, transport=transport
        )
        self._http.headers.update(core.default_headers(core.resolve_api_key(api_key)))

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def send(self, call: Call[T]) -> T:
        """Send one operation, retrying as the policy allows; parse the success."""
        retrying = Retrying(
            stop=stop_after_attempt(max(1, self.retry.attempts)),
            wait=self.retry.wait,
            retry=retry_if_exception(self.retry.should_retry),
            reraise=True,
        )
        for attempt in retrying:
            with attempt:
                kwargs = call.request_kwargs()
                if not self._owns_http:
                    kwargs.pop("timeout", None)
                if call.content is not None:
                    if call.progress is not None:
                        kwargs["content"] = core.upload_chunks(call.content, call.progress)
                        kwargs["headers"] = {
                            **call.headers,
                            "Content-Length": str(len(call.content)),
                        }
                    else:
                        kwargs["content"] = call.content
                response = self._http.request(call.method, call.path, **kwargs)
                if response.is_error:
                    raise error_from_response(response)
        return call.parse(response)

    # -- experiments -----------------------------------------------------------------------------

    def create_experiment(
        self,
        name: str,
        *,
        description: str = "",
        param_convention: str = "total",
        flops_formula: str = "6ND",
        metadata: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> ExperimentOut:
        return self.send(
            core.create_experiment(
                name, description, param_convention, flops_formula, metadata, idempotency_key
            )
        )

    def list_experiments(
        self, *, limit: int | None = None, page_token: str | None = None
    ) -> Page[ExperimentOut]:
        return self.send(core.list_experiments(limit, page_token))

    def iter_experiments(self, *, page_size: int = 100) -> Iterator[ExperimentOut]:
        return iterate_pages(lambda token: self.list_experiments(limit=page_size, page_token=token))

    def get_experiment(self, name: str) -> ExperimentOut:
        return self.send(core.get_experiment(name))

    def update_experiment(
        self,
        name: str,
        *,
        description: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> ExperimentOut:
        return self.send(core.update_experiment(name, description, metadata))

    def delete_experiment(self, name: str, *, force: bool = False) -> None:
        self.send(core.delete_experiment(name, force))

    # -- runs ------------------------------------------------------------------------------------

    def add_runs(
        self,
        experiment: str,
        runs: Sequence[RunIn | Mapping[str, Any]],
        *,
        idempotency_key: str | None = None,
    ) -> RunBatchResult:
        return self.send(core.add_runs(experiment, runs, idempotency_key))

    def import_runs(
        self,
        experiment: str,
        data: str | bytes | Path,
        *,
        format: ImportFormat | None = None,
        idempotency_key: str | None = None,
        progress: ProgressCallback | None = None,
        columns: Mapping[str, str] | None = None,
        derive_keys: bool = True,
    ) -> ImportResult:
        """Import a CSV or JSON-lines file (a Path: format from its suffix) or its text.
        `columns` maps names to your headers ({"params": "model_size"}); rows without a run_key
        are keyed by their content unless `derive_keys` is False."""
        return self.send(
            core.import_runs(
                experiment, data, format, idempotency_key, progress, columns, derive_keys
            )
        )

    def list_runs(
        self,
        experiment: str,
        filters: RunFilters | None = None,
        *,
        limit: int | None = None,
        page_token: str | None = None,
    ) -> Page[RunOut]:
        return self.send(core.list_runs(experiment, filters or RunFilters(), limit, page_token))

    def iter_runs(
        self, experiment: str, filters: RunFilters | None = None, *, page_size: int = 1000
    ) -> Iterator[RunOut]:
        return iterate_pages(
            lambda token: self.list_runs(experiment, filters, limit=page_size, page_token=token)
        )

    def get_run(self, run_id: int, *, include_curve: bool = False) -> RunOut:
        """One run; ``include_curve`` adds its stored loss curve (``curve``, None without one)."""
        return self.send(core.get_run(run_id, include_curve))

    def exclude_run(self, run_id: int, reason: str) -> RunOut:
        return self.send(core.set_run_excluded(run_id, True, reason))

    def include_run(self, run_id: int) -> RunOut:
        return self.send(core.set_run_excluded(run_id, False, None))

    # -- fits ------------------------------------------------------------------------------------

    def create_fit(
        self,
        experiment: str,
        spec: FitCreate | Mapping[str, Any] | None = None,
        *,
        law: LawName | None = None,
        method: MethodName | None = None,
        bootstrap: int | None = None,
        seed: int | None = None,
        huber_delta: float | None = None,
        filters: RunSelection | Mapping[str, Any] | None = None,
        include_excluded: bool | None = None,
        idempotency_key: str | None = None,
    ) -> FitOut:
        """Request a fit: small ones come back `succeeded`, large bootstraps `queued` (see
        `wait_for`). Give a whole `spec` or the keyword fields."""
        if spec is None:
            spec = core.fit_spec(
                law, method, bootstrap, seed, huber_delta, filters, include_excluded
            )
        return self.send(core.create_fit(experiment, spec, idempotency_key))

    def get_fit(self, fit_id: int) -> FitOut:
        return self.send(core.get_fit(fit_id))

    def list_fits(
        self, experiment: str, *, limit: int | None = None, page_token: str | None = None
    ) -> Page[FitOut]:
        return self.send(core.list_fits(experiment, limit, page_token))

    def iter_fits(self, experiment: str, *, page_size: int = 100) -> Iterator[FitOut]:
        return iterate_pages(
            lambda token: self.list_fits(experiment, limit=page_size, page_token=token)
        )

    def current_fit(
        self, experiment: str, *, law: LawName = "chinchilla", method: MethodName = "parametric"
    ) -> FitOut:
        return self.send(core.current_fit(experiment, law, method))

    def wait_for(
        self,
        fit_id: int,
        *,
        timeout: float = 600.0,
        poll_interval: float = 0.5,
        on_progress: Callable[[FitOut], None] | None = None,
    ) -> FitOut:
        """Poll a fit until it succeeds (returned) or fails (`FitFailedError`); `TimeoutError`
        after `timeout` seconds. `on_progress` sees every polled state."""
        deadline = time.monotonic() + timeout
        while True:
            fit = self.get_fit(fit_id)
            if on_progress is not None:
                on_progress(fit)
            if fit.status == "succeeded":
                return fit
            if fit.status == "failed":
                raise FitFailedError(fit)
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"fit {fit_id} still {fit.status} after {timeout:g} s")
            sleep(min(poll_interval, left))

    def plot(self, fit_id: int, kind: PlotKind | str = "isoflop") -> bytes:
        """An SVG plot of a fit: `isoflop`, `frontier` or `residuals`."""
        return self.send(core.plot(fit_id, kind))

    def plot_url(self, fit_id: int, kind: PlotKind | str = "isoflop") -> str:
        return f"{self.url}/v1/fits/{fit_id}/plots/{kind}.svg"

    # -- recommendations -------------------------------------------------------------------------

    def recommend(
        self,
        source: SourceSpec | Mapping[str, Any],
        budget: BudgetSpec | Mapping[str, Any],
        constraints: ConstraintsSpec | Mapping[str, Any] | None = None,
        *,
        confidence: float = 0.9,
    ) -> Recommendation:
        """POST /v1/recommendations, e.g. `recommend({"experiment": "chinchilla"},
        {"flops": 5.88e23})` or `recommend({"preset": "epoch-2024"}, {"gpu_hours": 1e5,
        "gpu": "H100-SXM", "mfu": 0.4})`. The inverse questions are budgets too: `{"params":
        1e9}` (compute-optimal FLOPs and tokens for that size), `{"tokens": 4.4e10}` (the model
        and FLOPs for that much unique data), `{"target_loss": 2.1}`. With
        `{"inference_tokens": 1e13}` in `constraints` a FLOP budget pays for training and
        inference (`"budget_binds": "total"`, the default) or training only (`"training"`)."""
        return self.send(core.recommend(source, budget, constraints, confidence))

    def recommendation(
        self,
        experiment: str,
        flops: float,
        *,
        law: LawName = "chinchilla",
        method: MethodName = "parametric",
        max_params: float | None = None,
        confidence: float = 0.9,
    ) -> Recommendation:
        """The GET form: the experiment's current fit at `flops`."""
        return self.send(
            core.recommendation(experiment, flops, law, method, max_params, confidence)
        )

    def frontier(
        self,
        experiment: str,
        flops_min: float,
        flops_max: float,
        *,
        points: int = 20,
        law: LawName = "chinchilla",
        method: MethodName = "parametric",
        confidence: float = 0.9,
    ) -> list[Recommendation]:
        return self.send(
            core.frontier(experiment, flops_min, flops_max, points, law, method, confidence)
        )

    def compare(
        self,
        sources: Sequence[SourceSpec | Mapping[str, Any]],
        budget: BudgetSpec | Mapping[str, Any],
        constraints: ConstraintsSpec | Mapping[str, Any] | None = None,
        *,
        confidence: float = 0.9,
    ) -> Comparison:
        """POST /v1/compare: each source at one budget (`rows`, with their conventions) and
        how far apart the answers are (`disagreement`)."""
        return self.send(core.compare(sources, budget, constraints, confidence))

    def laws(self) -> list[PublishedLaw]:
        return self.send(core.laws())

    def hardware(self) -> list[Hardware]:
        return self.send(core.hardware())

    # -- plans, jobs and the autopilot -----------------------------------------------------------

    def plan(
        self,
        experiment: str,
        request: PlanRequest | Mapping[str, Any] | None = None,
        *,
        target_flops: float | None = None,
        budget_flops: float | None = None,
        max_flops_per_run: float | None = None,
        min_flops_per_run: float | None = None,
        batch_size: int | None = None,
        overhead_flops: float | None = None,
        prior: str | None = None,
        trainer: Mapping[str, Any] | None = None,
        max_branches_per_run: int | None = None,
        max_runs: int | None = None,
    ) -> PlanOut:
        """The planner's proposal for an experiment (nothing is queued). Give a whole `request`
        or the keyword fields (`target_flops`, `budget_flops`, `max_flops_per_run` required);
        `trainer` fields (its shape's context and vocabulary) choose the shapes planned;
        `max_branches_per_run` > 1 lets it plan runs with several points (cooldown branches);
        `max_runs` caps the runs the experiment may still start (fewer, larger runs)."""
        return self.send(
            core.plan(
                experiment,
                _plan_request(
                    request,
                    target_flops,
                    budget_flops,
                    max_flops_per_run,
                    min_flops_per_run,
                    batch_size,
                    overhead_flops,
                    prior,
                    trainer,
                    max_branches_per_run,
                    max_runs,
                ),
            )
        )

    def queue_jobs(
        self,
        experiment: str,
        *,
        plan: PlanRequest | Mapping[str, Any] | None = None,
        runs: Sequence[JobRunSpec | Mapping[str, Any]] | None = None,
        trainer: Mapping[str, Any] | None = None,
        max_attempts: int | None = None,
        idempotency_key: str | None = None,
    ) -> list[JobOut]:
        """Queue training jobs: what the planner proposes for `plan`, or explicit `runs`
        (`{"params", "tokens", "seed", "trainer"}`); `trainer` fields go to every job of a
        plan or to each run (its own fields win). A run that repeats a stored run or an active
        job is refused (`ConflictError`)."""
        return self.send(
            core.queue_jobs(experiment, plan, runs, trainer, max_attempts, idempotency_key)
        )

    def list_jobs(
        self,
        *,
        experiment: str | None = None,
        status: JobStatus | None = None,
        origin: str | None = None,
        limit: int | None = None,
        page_token: str | None = None,
    ) -> Page[JobOut]:
        """One page of jobs, newest first; `origin` is `request`, `plan` or `autofill`."""
        return self.send(core.list_jobs(experiment, status, origin, limit, page_token))

    def iter_jobs(
        self,
        *,
        experiment: str | None = None,
        status: JobStatus | None = None,
        origin: str | None = None,
        page_size: int = 100,
    ) -> Iterator[JobOut]:
        return iterate_pages(
            lambda token: self.list_jobs(
                experiment=experiment,
                status=status,
                origin=origin,
                limit=page_size,
                page_token=token,
            )
        )

    def get_job(self, job_id: int) -> JobOut:
        return self.send(core.get_job(job_id))

    def cancel_job(self, job_id: int) -> JobOut:
        """Cancel a job: a queued one at once, a running one by its worker within a tick
        (`cancel_requested` until then). `ConflictError` for a finished job."""
        return self.send(core.cancel_job(job_id))

    def wait_for_job(
        self,
        job_id: int,
        *,
        timeout: float = 3600.0,
        poll_interval: float = 1.0,
        on_progress: Callable[[JobOut], None] | None = None,
    ) -> JobOut:
        """Poll a job until it is `succeeded`, `failed` or `cancelled` and return it (check its
        `status`); `TimeoutError` after `timeout` seconds. `on_progress` sees every poll."""
        deadline = time.monotonic() + timeout
        while True:
            job = self.get_job(job_id)
            if on_progress is not None:
                on_progress(job)
            if job.status in core.TERMINAL_JOB_STATUSES:
                return job
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"job {job_id} still {job.status} after {timeout:g} s")
            sleep(min(poll_interval, left))

    def get_autofill(self, experiment: str) -> AutofillOut:
        """The autopilot's settings and state: spent and remaining FLOPs, N_opt's width."""
        return self.send(core.get_autofill(experiment))

    def set_autofill(
        self, experiment: str, settings: AutofillSettings | Mapping[str, Any]
    ) -> AutofillOut:
        """Configure the autopilot (replaces its settings; `enabled=False` pauses it)."""
        return self.send(core.set_autofill(experiment, settings))

    # -- sources ---------------------------------------------------------------------------------

    def create_source(
        self,
        experiment: str,
        source: MlflowSourceIn | Mapping[str, Any],
        *,
        idempotency_key: str | None = None,
    ) -> MlflowSourceOut:
        """Attach an MLflow source (a server the operator configured, experiment ids, filter,
        mapping; see docs/integrations.md)."""
        return self.send(core.create_source(experiment, source, idempotency_key))

    def list_sources(self, experiment: str) -> list[MlflowSourceOut]:
        return self.send(core.list_sources(experiment))

    def get_source(self, source_id: int) -> MlflowSourceOut:
        return self.send(core.get_source(source_id))

    def update_source(
        self, source_id: int, patch: SourcePatch | Mapping[str, Any]
    ) -> MlflowSourceOut:
        """Change log_results, results_experiment_id, results_target_flops or
        schedule_seconds; fields left out stay, a null clears an optional one."""
        return self.send(core.update_source(source_id, patch))

    def delete_source(self, source_id: int) -> None:
        self.send(core.delete_source(source_id))

    def sync_source(self, source_id: int, *, full: bool = False) -> SyncResult:
        """Pull the MLflow runs finished since the last sync (``full``: all of them)."""
        return self.send(core.sync_source(source_id, full))

    # -- webhooks --------------------------------------------------------------------------------

    def create_webhook(
        self, webhook: WebhookCreate | Mapping[str, Any], *, idempotency_key: str | None = None
    ) -> WebhookCreated:
        """Subscribe a URL (on the operator's allow-list) to events; the answer's `secret` signs
        the deliveries and is never shown again (see docs/integrations.md)."""
        return self.send(core.create_webhook(webhook, idempotency_key))

    def list_webhooks(self, *, experiment: str | None = None) -> list[WebhookOut]:
        """Every webhook; with `experiment`, that experiment's and the global ones."""
        return self.send(core.list_webhooks(experiment))

    def get_webhook(self, webhook_id: int) -> WebhookOut:
        return self.send(core.get_webhook(webhook_id))

    def delete_webhook(self, webhook_id: int) -> None:
        self.send(core.delete_webhook(webhook_id))

    def list_webhook_deliveries(
        self, webhook_id: int, *, limit: int | None = None, page_token: str | None = None
    ) -> Page[DeliveryOut]:
        """One page of a webhook's deliveries, newest first: status, attempts, response code."""
        return self.send(core.list_webhook_deliveries(webhook_id, limit, page_token))

    def iter_webhook_deliveries(
        self, webhook_id: int, *, page_size: int = 100
    ) -> Iterator[DeliveryOut]:
        return iterate_pages(
            lambda token: self.list_webhook_deliveries(
                webhook_id, limit=page_size, page_token=token
            )
        )

    def test_webhook(self, webhook_id: int) -> DeliveryOut:
        """Queue a `ping` event to this webhook; the worker sends it in turn."""
        return self.send(core.test_webhook(webhook_id))

    # -- keys and health -------------------------------------------------------------------------

    def list_keys(self) -> list[KeyOut]:
        return self.send(core.list_keys())

    def create_key(
        self, name: str, scopes: Sequence[Scope], *, idempotency_key: str | None = None
    ) -> KeyCreated:
        return self.send(core.create_key(name, scopes, idempotency_key))

    def revoke_key(self, prefix: str) -> KeyOut:
        return self.send(core.revoke_key(prefix))

    def ready(self) -> dict[str, Any]:
        """GET /readyz: `{"status": "ready"}`, or `ServiceUnavailableError` after retries."""
        return self.send(core.health())


def _plan_request(
    request: PlanRequest | Mapping[str, Any] | None,
    target_flops: float | None,
    budget_flops: float | None,
    max_flops_per_run: float | None,
    min_flops_per_run: float | None,
    batch_size: int | None,
    overhead_flops: float | None,
    prior: str | None,
    trainer: Mapping[str, Any] | None,
    max_branches_per_run: int | None = None,
    max_runs: int | None = None,
) -> PlanRequest | Mapping[str, Any]:
    if request is not None:
        return request
    if target_flops is None or budget_flops is None or max_flops_per_run is None:
        raise TypeError("give a request or target_flops, budget_flops and max_flops_per_run")
    return core.plan_request(
        target_flops,
        budget_flops,
        max_flops_per_run,
        min_flops_per_run,
        batch_size,
        overhead_flops,
        prior,
        trainer,
        max_branches_per_run,
        max_runs,
    )
