from __future__ import annotations

from pathlib import Path

import pytest

from service.trainer.config import CorpusSpec, ModelShape, TrainConfig


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("corpus-cache")


@pytest.fixture(scope="session")
def small_corpus() -> CorpusSpec:
    return CorpusSpec(roots=("stdlib",), max_bytes=1_500_000, val_tokens=40_000)


@pytest.fixture(scope="session")
def tiny_config(small_corpus: CorpusSpec, cache_dir: Path) -> TrainConfig:
    """About 50k parameters, context 64, 8 sequences per step."""
    return TrainConfig(
        shape=ModelShape(n_layer=2, d_model=48, n_head=2, context_tokens=64),
        tokens=300 * 8 * 64,
        batch_tokens=8 * 64,
        lr=1e-2,
        corpus=small_corpus,
        cache_dir=str(cache_dir),
        eval_tokens=8192,
        device="cpu",
        # One thread: xdist runs two workers on two cores, and a 50k-parameter model gains
        # nothing from a second thread but the contention.
        threads=1,
    )
