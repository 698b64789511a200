"""The executor contract: submit a job, poll it, cancel it. The database stays the record of
truth; an executor only knows what it was handed and what it is running."""

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

State = Literal["running", "succeeded", "failed", "cancelled"]


@dataclass(frozen=True)
class JobSpec:
    """What an executor runs: job `job_id` of `experiment` at (params, tokens); `config` is the
    job's stored config (its `trainer` entry is the trainer's TrainConfig as JSON)."""

    job_id: int
    experiment: str
    params: float
    tokens: float
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def run_key(self) -> str:
        return f"job-{self.job_id}"


@dataclass(frozen=True)
class Outcome:
    """state running: progress in [0, 1]; succeeded: `run` is the run to store (the body of one
    run in POST /v1/experiments/{name}/runs); failed: `error` says why."""

    state: State
    progress: float = 0.0
    run: dict[str, Any] | None = None
    error: str | None = None
    log_tail: str = ""


class Executor(Protocol):
    name: str
    slots: int

    def submit(self, spec: JobSpec) -> str:
        """Start the job; return a handle for poll and cancel."""
        ...

    def poll(self, handle: str) -> Outcome: ...

    def cancel(self, handle: str) -> None:
        """Stop the job; its next poll says cancelled."""
        ...

    def close(self) -> None:
        """Stop everything still running (the worker is shutting down)."""
        ...


class UnknownHandleError(Exception):
    """This executor does not know the handle (another process submitted it)."""
