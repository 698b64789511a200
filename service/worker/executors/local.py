"""Local executor: one `scaling-service train` subprocess per job, pinned to a GPU.

Slots = GPUs x jobs per GPU (small models leave a GPU mostly idle, so several share one), or
`cpu_slots` without GPUs. Each job has a hard time limit; cancel kills its process group. On
Linux the trainer dies with the worker (PR_SET_PDEATHSIG), so a killed worker leaves no orphan
training that nobody will read.
"""

import contextlib
import ctypes
import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from service.worker.executors.base import JobSpec, Outcome, UnknownHandleError
from service.worker.executors.trainer_output import failure_reason, succeeded

_STEP = re.compile(rb"step (\d+)/(\d+)")
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # runs in the child between fork and exec
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


@dataclass
class _Running:
    process: subprocess.Popen[bytes]
    folder: Path
    job: dict[str, Any]
    started: float
    gpu: int | None
    cancelled: bool = False


def _tail(path: Path, size: int = 2000) -> bytes:
    try:
        with path.open("rb") as handle:
            handle.seek(max(0, path.stat().st_size - size))
            return handle.read()
    except OSError:
        return b""


class LocalExecutor:
    name = "local"

    def __init__(
        self,
        work_dir: Path,
        gpus: int = 0,
        jobs_per_gpu: int = 1,
        cpu_slots: int = 1,
        time_limit_s: float = 3600.0,
        python: str = sys.executable,
    ) -> None:
        self.work_dir = work_dir
        self.gpus = gpus
        self.jobs_per_gpu = jobs_per_gpu
        self.slots = gpus * jobs_per_gpu if gpus else cpu_slots
        self.time_limit_s = time_limit_s
        self.python = python
        self._running: dict[str, _Running] = {}

    def _free_gpu(self) -> int | None:
        if not self.gpus:
            return None
        load = {gpu: 0 for gpu in range(self.gpus)}
        for running in self._running.values():
            if running.gpu is not None and running.process.poll() is None:
                load[running.gpu] += 1
        return min(load, key=lambda gpu: load[gpu])

    def submit(self, spec: JobSpec) -> str:
        folder = self.work_dir / spec.run_key
        folder.mkdir(parents=True, exist_ok=True)
        job = {
            "job_id": spec.run_key,
            "experiment": spec.experiment,
            "config": spec.config["trainer"],
            "hyperparameters": spec.config.get("hyperparameters", {}),
        }
        (folder / "job.json").write_text(json.dumps(job))
        (folder / "result.json").unlink(missing_ok=True)
        gpu = self._free_gpu()
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        if gpu is not None:
            env["CUDA_VISIBLE_DEVICES"] = str(gpu)
        command = [
            self.python,
            "-m",
            "service.cli.main",
            "train",
            str(folder / "job.json"),
            "--out",
            str(folder / "result.json"),
            "--time-limit",
            str(self.time_limit_s),
        ]
        with (folder / "log.txt").open("wb") as log:
            process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )
        handle = f"{spec.run_key}:{process.pid}"
        self._running[handle] = _Running(process, folder, job, time.monotonic(), gpu)
        return handle

    def poll(self, handle: str) -> Outcome:
        running = self._running.get(handle)
        if running is None:
            raise UnknownHandleError(handle)
        log = _tail(running.folder / "log.txt")
        tail = log.decode("utf-8", "replace")
        code = running.process.poll()
        if code is None:
            if time.monotonic() - running.started > self.time_limit_s + 60:
                self._kill(running)
                return Outcome("failed", error=f"hard time limit {self.time_limit_s:.0f} s")
            steps = _STEP.findall(log)
            progress = int(steps[-1][0]) / max(int(steps[-1][1]), 1) if steps else 0.0
            return Outcome("running", progress=progress, log_tail=tail)
        del self._running[handle]
        if running.cancelled:
            return Outcome("cancelled", log_tail=tail)
        try:
            payload = json.loads((running.folder / "result.json").read_text())
        except (OSError, ValueError):
            payload = None
        if code == 0 and payload is not None and payload.get("status") == "ok":
            return succeeded(running.job, payload, tail)
        return Outcome("failed", error=failure_reason(payload, code, tail), log_tail=tail)

    def _kill(self, running: _Running) -> None:
        try:
            os.killpg(running.process.pid, signal.SIGTERM)
            running.process.wait(timeout=5)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(running.process.pid, signal.SIGKILL)
            running.process.wait()

    def cancel(self, handle: str) -> None:
        running = self._running.get(handle)
        if running is None:
            raise UnknownHandleError(handle)
        running.cancelled = True
        self._kill(running)

    def close(self) -> None:
        for handle in list(self._running):
            self._kill(self._running.pop(handle))
