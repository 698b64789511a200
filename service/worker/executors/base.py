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
    """state running: progress in [0, 1]; succeeded: `runs` are the runs to store (bodies of
    POST /v1/experiments/{name}/runs), the job's own first (run key `job-<id>`), then, for a run
    with several points (WSD cooldown branches), one per other branch (`job-<id>@<tokens>`,
    all with `trunk_key` = the job's run key); `trained_flops` is the compute the job really
    spent (6ND over the trunk once plus every cooldown, the trainer's `trained_flops_6nd`), None
    when the executor cannot say (then its runs' FLOPs are the job's); failed: `error` says why.
    """

    state: State
    progress: float = 0.0
    runs: tuple[dict[str, Any], ...] = ()
    error: str | None = None
    log_tail: str = ""
    trained_flops: float | None = None

    @property
    def run(self) -> dict[str, Any] | None:
        """The job's own run (its longest point), if any."""
        return self.runs[0] if self.runs else None


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
