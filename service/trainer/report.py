"""Report a finished run to the service: POST /v1/experiments/{experiment}/runs, idempotent."""

from __future__ import annotations

import math
from typing import Any

import httpx
from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_exponential

from service.trainer.errors import ReportError
from service.trainer.job import Job
from service.trainer.result import TrainPoint, TrainResult


class _RetryableError(Exception):
    """The service is unavailable for now."""


def branch_run_key(job_id: str, tokens: int) -> str:
    """The run key of a WSD branch other than the job's own (its longest)."""
    return f"{job_id}@{tokens}"


def run_payload(job: Job, result: TrainResult) -> dict[str, Any]:
    """The service's run body. params = total (tied head counted once); flops = 6ND with head.

    Cosine: one run, key = the job id. WSD: one run per branch, the job's own first (its
    longest branch, key = the job id), then the others shortest first (key job@tokens); each
    says how its loss was measured (loss_provenance after_cooldown, cooldown_fraction) and which
    trunk it branched from (trunk_key = the job id), in the run's own fields; metadata keeps
    where its cooldown started (cooldown_start_tokens) and the schedule.
    """
    if result.status != "ok" or result.val_loss is None or not math.isfinite(result.val_loss):
        raise ReportError(f"only ok runs with a finite loss are reported (status {result.status})")
    if result.schedule == "cosine":
        return {"runs": [_run(job, result, result.points[-1])]}
    runs = []
    longest = result.points[-1]
    for point in [longest, *result.points[:-1]]:
        run = _run(job, result, point)
        if point is not longest:
            run["run_key"] = branch_run_key(job.job_id, point.tokens)
        run.update(
            loss_provenance=point.loss_provenance,
            cooldown_fraction=point.cooldown_fraction,
            trunk_key=job.job_id,
        )
        run["metadata"].update(cooldown_start_tokens=point.cooldown_start_tokens, schedule="wsd")
        runs.append(run)
    return {"runs": runs}


def _run(job: Job, result: TrainResult, point: TrainPoint) -> dict[str, Any]:
    hyper = {
        "n_layer": result.config["shape"]["n_layer"],
        "d_model": result.config["shape"]["d_model"],
        "n_head": result.config["shape"]["n_head"],
        "context_tokens": result.config["shape"]["context_tokens"],
        "batch_tokens": result.batch_tokens,
        "peak_lr": result.peak_lr,
        "beta2": result.beta2,
        "warmup_steps": result.warmup_steps,
        "steps": point.steps,
        **job.hyperparameters,
    }
    return {
        "run_key": job.job_id,
        "params": result.total_params,
        "tokens": point.tokens,
        "flops": point.flops_6nd,
        "loss": point.val_loss,
        "unique_tokens": result.unique_train_tokens,
        "seed": result.config["seed"],
        "hyperparameters": hyper,
        "metadata": {
            "param_convention": "total",
            "flops_formula": result.flops_formula,
            "corpus_id": result.corpus_id,
            "corpus_hash": result.corpus_hash,
            "tokenizer_hash": result.tokenizer_hash,
            "non_embedding_params": result.non_embedding_params,
            "embedding_params": result.embedding_params,
            "head_params": result.head_params,
            "flops_with_attention": point.flops_with_attention,
            "val_bits_per_byte": point.val_bits_per_byte,
            "epochs": point.tokens / result.unique_train_tokens,
            "device": result.versions.get("device"),
            "mfu": result.mfu,
            "tokens_per_s": result.tokens_per_s,
            "wall_time_s": result.wall_time_s,
            "versions": result.versions,
        },
        "source": "trainer",
    }


def report_run(
    url: str,
    api_key: str,
    job: Job,
    result: TrainResult,
    *,
    attempts: int = 5,
    max_wait_s: float = 8.0,
    transport: httpx.BaseTransport | None = None,
) -> httpx.Response:
    """POST the run; retry on 503 and connection errors; 200/201 is success."""
    body = run_payload(job, result)
    endpoint = f"{url.rstrip('/')}/v1/experiments/{job.experiment}/runs"
    headers = {"Authorization": f"Bearer {api_key}"}

    @retry(
        retry=retry_if_exception_type((_RetryableError, httpx.TransportError)),
        stop=stop_after_attempt(attempts),
        wait=wait_exponential(multiplier=0.25, max=max_wait_s),
        reraise=True,
    )
    def post(client: httpx.Client) -> httpx.Response:
        response = client.post(endpoint, json=body, headers=headers)
        if response.status_code == 503:
            raise _RetryableError()
        return response

    try:
        with httpx.Client(timeout=30.0, transport=transport) as client:
            response = post(client)
    except (_RetryableError, httpx.HTTPError) as exc:
        raise ReportError(f"{endpoint}: {exc!r}") from exc
    if response.status_code not in (200, 201):
        raise ReportError(f"{endpoint}: HTTP {response.status_code} {response.text[:500]}")
    return response
