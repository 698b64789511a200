"""The worker as a process: kill -9 mid-job loses nothing and duplicates nothing, and SIGTERM
stops it cleanly."""

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import make_experiment
from tests.worker.conftest import request_trainer


def start_worker(database_url: str, work_dir: Path, log: Path) -> subprocess.Popen[bytes]:
    command = [
        sys.executable,
        "-m",
        "service.cli.main",
        "worker",
        "--executor",
        "local",
        "--work-dir",
        str(work_dir),
        "--poll",
        "0.2",
        "--lease",
        "3",
        "--no-autopilot",
    ]
    env = {**os.environ, "SCALING_DATABASE_URL": database_url, "SCALING_LOG_LEVEL": "info"}
    return subprocess.Popen(command, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)


def wait_for(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.2)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie child of ours has exited too.
    try:
        return os.waitpid(pid, os.WNOHANG) == (0, 0)
    except ChildProcessError:
        return True


@pytest.mark.slow
def test_kill_9_mid_job_completes_the_job_exactly_once(
    client: TestClient,
    database_url: str,
    tmp_path: Path,
    corpus_cache: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    make_experiment(client)
    trainer = request_trainer(monkeypatch, corpus_cache, tokens=400 * 8 * 32)
    response = client.post(
        "/v1/experiments/exp/jobs",
        json={"runs": [{"params": 2e4, "tokens": 400 * 8 * 32, "trainer": trainer}]},
    )
    job_id = response.json()[0]["id"]

    def job() -> Any:
        return client.get(f"/v1/jobs/{job_id}").json()

    first = start_worker(database_url, tmp_path / "first", tmp_path / "first.log")
    try:
        running = wait_for(lambda: job()["handle"] and job(), 60, "the first worker's claim")
        assert running["status"] == "running"
        assert running["attempts"] == 1
        trainer_pid = int(running["handle"].split(":")[1])
        time.sleep(1.0)  # mid-job: the trainer is importing torch or training
        assert alive(trainer_pid)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    finally:
        if first.poll() is None:
            first.kill()
    wait_for(lambda: not alive(trainer_pid), 10, "the orphaned trainer to die with its worker")

    second = start_worker(database_url, tmp_path / "second", tmp_path / "second.log")
    try:
        done = wait_for(
            lambda: job()["status"] in ("succeeded", "failed") and job(), 180, "the retry"
        )
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=30) == 0
    finally:
        if second.poll() is None:
            second.kill()
    assert done["status"] == "succeeded", done["error"]
    assert done["attempts"] == 2
    runs = client.get("/v1/experiments/exp/runs").json()["items"]
    assert [run["run_key"] for run in runs] == [f"job-{job_id}"]
    assert runs[0]["id"] == done["result_run_id"]
    assert runs[0]["metadata"]["corpus_hash"]
