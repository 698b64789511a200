"""Fixtures for the worker: a tiny real training config and executors under test."""

import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from service.testing import free_port, wait_until_ok

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def corpus_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("worker-corpus")


def tiny_trainer(cache: Path, tokens: int = 40 * 8 * 32, d_model: int = 32) -> dict[str, Any]:
    """A ~15k-parameter model for a few seconds of CPU: enough to be a real training run."""
    return {
        "shape": {"n_layer": 1, "d_model": d_model, "n_head": 2, "context_tokens": 32},
        "tokens": tokens,
        "batch_tokens": 8 * 32,
        "lr": 1e-2,
        "corpus": {"roots": ["stdlib"], "max_bytes": 600_000, "val_tokens": 8_000},
        "cache_dir": str(cache),
        "eval_tokens": 2048,
        "device": "cpu",
        "threads": 1,
        "seed": 0,
    }


def request_trainer(monkeypatch: pytest.MonkeyPatch, cache: Path, **options: Any) -> dict[str, Any]:
    """tiny_trainer as an API caller sends it: the corpus cache is the worker's own setting
    (SCALING_CACHE_DIR, which the worker's trainers inherit), never a request field."""
    monkeypatch.setenv("SCALING_CACHE_DIR", str(cache))
    fields = tiny_trainer(cache, **options)
    del fields["cache_dir"]
    return fields


@pytest.fixture(scope="session")
def ray_head() -> Iterator[str]:
    """A local Ray head with two logical GPUs; yields the Jobs API address."""
    ray = shutil.which("ray", path=str(Path(sys.executable).parent))
    if ray is None:
        pytest.fail("the ray extra is not installed: pip install '.[ray]'")
    dashboard, gcs = free_port(), free_port()
    # Ray's unix sockets live under --temp-dir: keep it short (socket paths max ~107 bytes).
    temp = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))
    command = [
        ray,
        "start",
        "--head",
        "--num-cpus=2",
        "--num-gpus=2",
        "--disable-usage-stats",
        "--include-dashboard=true",
        "--dashboard-host=127.0.0.1",
        f"--dashboard-port={dashboard}",
        f"--port={gcs}",
        f"--temp-dir={temp}",
    ]
    subprocess.run(command, check=True, capture_output=True, timeout=180)
    address = f"http://127.0.0.1:{dashboard}"
    try:
        wait_until_ok(f"{address}/api/version", 180, interval=0.5)
        yield address
    finally:
        subprocess.run([ray, "stop", "--force"], capture_output=True, timeout=120)
        shutil.rmtree(temp, ignore_errors=True)
