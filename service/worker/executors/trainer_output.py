"""From the `train` command's result file to the run the worker stores."""

from typing import Any

from service.trainer.job import Job
from service.trainer.report import run_payload
from service.trainer.result import TrainResult


def run_from_result(job: dict[str, Any], payload: dict[str, Any]) -> dict[str, Any]:
    """The run body for a finished ok training job (source `worker`, run_key = the job id)."""
    result = TrainResult.from_dict(payload["result"])
    run: dict[str, Any] = run_payload(Job.from_dict(job), result)["runs"][0]
    run["source"] = "worker"
    return run


def failure_reason(payload: dict[str, Any] | None, exit_code: int, log_tail: str) -> str:
    if payload is not None and payload.get("status") not in (None, "ok"):
        result = payload.get("result") or {}
        return f"training {payload['status']}: {'; '.join(result.get('warnings', [])) or log_tail}"
    return f"trainer exited with code {exit_code}: {log_tail[-500:]}"
