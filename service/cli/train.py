"""The `train` command: run one training job from a job file, optionally report it.

A job file:
    {"job_id": "j-42", "experiment": "byte-gpt",
     "config": {"shape": {"non_embedding_params": 2e6, "context_tokens": 256},
                "target_flops": 1e15, "corpus": {"roots": ["stdlib", "site"]}},
     "hyperparameters": {"sweep": "isoflop-1"}}
"""

from __future__ import annotations

import importlib.util
import json
import signal
import sys
from dataclasses import replace
from enum import IntEnum
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from service.trainer.job import Job


class ExitCode(IntEnum):
    OK = 0
    BAD_JOB = 3
    TRAINING_FAILED = 4
    TIMEOUT = 5
    REPORT_FAILED = 6
    TORCH_MISSING = 7


# Grace after the soft limit before the alarm stops a step that never returns.
HARD_LIMIT_GRACE_S = 120


class _HardTimeoutError(Exception):
    """The hard time limit expired inside a training step."""


def _write(out: Path, payload: dict[str, Any]) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".tmp")
    tmp.write_text(json.dumps(payload, indent=1))
    tmp.replace(out)


def _progress(step: int, steps: int, loss: float) -> None:
    print(f"step {step}/{steps} train_loss {loss:.4f}", file=sys.stderr, flush=True)


def _on_alarm(signum: int, frame: FrameType | None) -> None:
    raise _HardTimeoutError()


def _parse_tokens(text: str) -> tuple[int, ...]:
    """Comma-separated token counts; 1e6 and 1000000 alike."""
    counts = []
    for part in text.split(","):
        value = float(part)
        if not value.is_integer():
            raise ValueError(f"{part!r} is not a whole number of tokens")
        counts.append(int(value))
    return tuple(counts)


def _with_schedule(
    job: Job, schedule: str | None, branch_tokens: str | None, cooldown_fraction: float | None
) -> Job:
    """The job with the command line's schedule options over its config's."""
    from service.trainer.errors import JobError
    from service.trainer.job import Job

    changes: dict[str, Any] = {}
    if schedule is not None:
        changes["schedule"] = schedule
    if branch_tokens is not None:
        try:
            changes["branch_tokens"] = _parse_tokens(branch_tokens)
        except ValueError as exc:
            raise JobError(f"--branch-tokens: {exc}") from exc
    if cooldown_fraction is not None:
        changes["cooldown_fraction"] = cooldown_fraction
    if not changes:
        return job
    data = {"job_id": job.job_id, "experiment": job.experiment}
    config = {**job.config.to_dict(), **changes}
    return Job.from_dict({**data, "config": config, "hyperparameters": job.hyperparameters})


def run_train(
    job_file: Path,
    out: Path,
    report_url: str | None,
    api_key: str | None,
    time_limit_s: float | None,
    *,
    schedule: str | None = None,
    branch_tokens: str | None = None,
    cooldown_fraction: float | None = None,
) -> int:
    from service.trainer.errors import JobError, ReportError
    from service.trainer.job import Job

    try:
        job = _with_schedule(Job.load(job_file), schedule, branch_tokens, cooldown_fraction)
    except JobError as exc:
        print(f"bad job file: {exc}", file=sys.stderr)
        return ExitCode.BAD_JOB
    if report_url and not api_key:
        print("bad job: --report-url needs --api-key or SCALING_API_KEY", file=sys.stderr)
        return ExitCode.BAD_JOB
    if importlib.util.find_spec("torch") is None:
        print("torch is not installed: install the `train` extra (torch==2.13.0)", file=sys.stderr)
        return ExitCode.TORCH_MISSING
    from service.trainer.loop import train

    config = job.config
    if time_limit_s is not None:
        limit = min(time_limit_s, config.time_limit_s or time_limit_s)
        config = replace(config, time_limit_s=limit)
    base = {"job_id": job.job_id, "experiment": job.experiment}
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    if config.time_limit_s is not None:
        signal.alarm(int(config.time_limit_s) + HARD_LIMIT_GRACE_S)
    try:
        result = train(config, progress=_progress)
    except _HardTimeoutError:
        _write(out, {**base, "status": "timeout", "result": None, "reported": False})
        print("hard time limit expired", file=sys.stderr)
        return ExitCode.TIMEOUT
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    payload: dict[str, Any] = {**base, "status": result.status, "result": result.to_dict()}
    payload["reported"] = False
    _write(out, payload)
    for point in result.points if result.schedule == "wsd" else []:
        print(
            f"branch: val_loss {point.val_loss} nats/token at {point.tokens} tokens, "
            f"{point.flops_6nd:.4g} FLOPs (6ND), cooldown from {point.cooldown_start_tokens} "
            f"tokens ({point.loss_provenance}, cooldown_fraction {point.cooldown_fraction:.3g})",
            file=sys.stderr,
        )
    print(
        f"{result.status}: val_loss {result.val_loss} nats/token, {result.tokens} tokens, "
        f"{result.tokens_per_s:,.0f} tokens/s",
        file=sys.stderr,
    )
    if result.status == "timeout":
        return ExitCode.TIMEOUT
    if result.status != "ok":
        return ExitCode.TRAINING_FAILED
    if report_url and api_key:
        from service.trainer.report import report_run

        try:
            response = report_run(report_url, api_key, job, result)
        except ReportError as exc:
            print(f"report failed: {exc}", file=sys.stderr)
            return ExitCode.REPORT_FAILED
        payload["reported"] = True
        payload["report_status"] = response.status_code
        _write(out, payload)
    return ExitCode.OK


def register(app: typer.Typer) -> None:
    """Add the `train` command to `app`."""

    @app.command("train")
    def train_command(
        job_file: Annotated[Path, typer.Argument(help="JSON: job_id, experiment, config.")],
        out: Annotated[Path, typer.Option("--out", help="Where to write RESULT.json.")],
        report_url: Annotated[
            str | None, typer.Option("--report-url", help="Service base URL to report to.")
        ] = None,
        api_key: Annotated[
            str | None, typer.Option("--api-key", envvar="SCALING_API_KEY", help="API key.")
        ] = None,
        time_limit_s: Annotated[
            float | None, typer.Option("--time-limit", help="Seconds; the run stops after.")
        ] = None,
        schedule: Annotated[
            str | None,
            typer.Option(
                "--schedule",
                help="cosine (one point) or wsd (warmup-stable-decay: a point per branch); "
                "overrides the job's.",
            ),
        ] = None,
        branch_tokens: Annotated[
            str | None,
            typer.Option(
                "--branch-tokens",
                help="wsd: comma-separated token counts, one point each (default: the job's "
                "tokens).",
            ),
        ] = None,
        cooldown_fraction: Annotated[
            float | None,
            typer.Option("--cooldown-fraction", help="wsd: each branch's cooldown share (0.2)."),
        ] = None,
    ) -> None:
        """Train one small language model (needs the `train` extra: torch).

        Exit codes: 0 ok; 3 bad job file; 4 training failed (nan or diverged);
        5 time limit reached; 6 reporting to the service failed; 7 torch not installed.
        """
        code = run_train(
            job_file,
            out,
            report_url,
            api_key,
            time_limit_s,
            schedule=schedule,
            branch_tokens=branch_tokens,
            cooldown_fraction=cooldown_fraction,
        )
        raise typer.Exit(code)
