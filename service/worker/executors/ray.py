"""Ray executor: each job is a Ray job (Jobs API) running the `train` command on the cluster.

entrypoint = the trainer CLI, entrypoint_num_gpus = GPUs per job, submission_id = the job's run
key, so resubmitting a job Ray already knows is refused by Ray rather than run twice. The job
file travels inside the entrypoint (base64) and the result comes back on the job's log after a
marker line, so the cluster needs no shared file system. Needs the `ray` extra.
"""

import base64
import contextlib
import json
import shlex
from typing import Any

from service.worker.executors.base import JobSpec, Outcome, UnknownHandleError
from service.worker.executors.trainer_output import failure_reason, succeeded

RESULT_MARKER = "SCALING_RESULT "


def entrypoint(job: dict[str, Any], python: str, time_limit_s: float) -> str:
    encoded = base64.b64encode(json.dumps(job).encode()).decode()
    folder = f"/tmp/scaling-{job['job_id']}"
    return (
        f"mkdir -p {folder} && echo {encoded} | base64 -d > {folder}/job.json && "
        f"{shlex.quote(python)} -m service.cli.main train {folder}/job.json "
        f"--out {folder}/result.json --time-limit {time_limit_s:.0f}; "
        f"code=$?; echo; echo {RESULT_MARKER}$(tr -d '\\n' < {folder}/result.json 2>/dev/null); "
        "exit $code"
    )


def result_from_logs(logs: str) -> dict[str, Any] | None:
    for line in reversed(logs.splitlines()):
        if line.startswith(RESULT_MARKER):
            try:
                payload: dict[str, Any] = json.loads(line[len(RESULT_MARKER) :])
                return payload
            except ValueError:
                return None
    return None


class RayExecutor:
    name = "ray"

    def __init__(
        self,
        address: str,
        slots: int = 4,
        gpus_per_job: float = 0.0,
        python: str = "python",
        time_limit_s: float = 3600.0,
        runtime_env: dict[str, Any] | None = None,
    ) -> None:
        from ray.job_submission import JobSubmissionClient

        self.client = JobSubmissionClient(address)
        self.slots = slots
        self.gpus_per_job = gpus_per_job
        self.python = python
        self.time_limit_s = time_limit_s
        self.runtime_env = runtime_env
        self._jobs: dict[str, dict[str, Any]] = {}

    def submit(self, spec: JobSpec) -> str:
        job = {
            "job_id": spec.run_key,
            "experiment": spec.experiment,
            "config": spec.config["trainer"],
            "hyperparameters": spec.config.get("hyperparameters", {}),
        }
        submission_id = f"scaling-{spec.run_key}-a{spec.config.get('attempt', 1)}"
        self.client.submit_job(
            entrypoint=entrypoint(job, self.python, self.time_limit_s),
            submission_id=submission_id,
            entrypoint_num_gpus=self.gpus_per_job or None,
            runtime_env=self.runtime_env,
        )
        self._jobs[submission_id] = job
        return submission_id

    def poll(self, handle: str) -> Outcome:
        from ray.job_submission import JobStatus

        if handle not in self._jobs:
            raise UnknownHandleError(handle)
        status = self.client.get_job_status(handle)
        if status in (JobStatus.PENDING, JobStatus.RUNNING):
            return Outcome("running")
        logs = self.client.get_job_logs(handle)
        tail = logs[-2000:]
        job = self._jobs.pop(handle)
        if status == JobStatus.STOPPED:
            return Outcome("cancelled", log_tail=tail)
        payload = result_from_logs(logs)
        if status == JobStatus.SUCCEEDED and payload is not None and payload.get("status") == "ok":
            return succeeded(job, payload, tail)
        info = self.client.get_job_info(handle)
        code = getattr(info, "driver_exit_code", None) or -1
        return Outcome("failed", error=failure_reason(payload, code, tail), log_tail=tail)

    def cancel(self, handle: str) -> None:
        if handle not in self._jobs:
            raise UnknownHandleError(handle)
        self.client.stop_job(handle)

    def close(self) -> None:
        for handle in list(self._jobs):
            with contextlib.suppress(Exception):
                self.client.stop_job(handle)
