"""From the `train` command's result file to the runs the worker stores."""

from typing import Any

from service.trainer.job import Job
from service.trainer.report import run_payload
from service.trainer.result import TrainResult
from service.worker.executors.base import Outcome


def succeeded(job: dict[str, Any], payload: dict[str, Any], log_tail: str) -> Outcome:
    """The outcome of a finished ok training job: one run per point (source `worker`; the job's
    own first, run_key = the job id; WSD branches `job@tokens`, trunk_key = the job id) and the
    FLOPs it really trained (the trunk once plus every cooldown)."""
    result = TrainResult.from_dict(payload["result"])
    runs: list[dict[str, Any]] = run_payload(Job.from_dict(job), result)["runs"]
    for run in runs:
        run["source"] = "worker"
    return Outcome(
        "succeeded",
        progress=1.0,
        runs=tuple(runs),
        log_tail=log_tail,
        trained_flops=result.trained_flops_6nd,
    )


def failure_reason(payload: dict[str, Any] | None, exit_code: int, log_tail: str) -> str:
    if payload is not None and payload.get("status") not in (None, "ok"):
        result = payload.get("result") or {}
        return f"training {payload['status']}: {'; '.join(result.get('warnings', [])) or log_tail}"
    return f"trainer exited with code {exit_code}: {log_tail[-500:]}"
