"""Fixtures for the worker: a tiny real training config and executors under test."""

from pathlib import Path
from typing import Any

import pytest


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
