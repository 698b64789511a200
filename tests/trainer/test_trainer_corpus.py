from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from service.trainer.config import CorpusSpec
from service.trainer.corpus import build_manifest, load_corpus
from service.trainer.errors import CorpusError


def _write_docs(root: Path, n: int, size: int) -> None:
    for i in range(n):
        (root / f"mod_{i:03d}.py").write_text(f"# doc {i}\n" + f"x_{i} = {i}\n" * (size // 10))


@pytest.fixture
def doc_root(tmp_path: Path) -> Path:
    root = tmp_path / "src"
    root.mkdir()
    _write_docs(root, 40, 2000)
    (root / "binary.py").write_bytes(b"a = 1\x00\n")
    return root


def test_manifest_hashes_content_and_skips_nul_files(doc_root: Path) -> None:
    spec = CorpusSpec(roots=(f"dir:{doc_root}",), val_tokens=5000)
    entries, first = build_manifest(spec)
    assert len(entries) == 40
    assert all(not e.path.endswith("binary.py") for e in entries)
    assert build_manifest(spec)[1] == first
    (doc_root / "mod_007.py").write_text("changed = True\n")
    assert build_manifest(spec)[1] != first


def test_split_is_by_document_with_a_fixed_validation_size(doc_root: Path, tmp_path: Path) -> None:
    spec = CorpusSpec(roots=(f"dir:{doc_root}",), val_tokens=5000)
    corpus = load_corpus(spec, tmp_path / "cache")
    val = np.fromfile(corpus.val_path, dtype=np.uint8)
    train = np.fromfile(corpus.train_path, dtype=np.uint8)
    assert corpus.val_tokens == len(val) == 5000
    assert corpus.train_tokens == len(train)
    train_docs = set(bytes(train).split(b"\x00"))
    val_docs = [d for d in bytes(val).split(b"\x00") if d]
    # Every whole validation document is absent from the training stream.
    assert all(doc not in train_docs for doc in val_docs[:-1])
    assert corpus.n_val_documents + len([d for d in train_docs if d]) == corpus.n_documents


def test_cache_is_reused_and_keyed_by_corpus_hash(doc_root: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    spec = CorpusSpec(roots=(f"dir:{doc_root}",), val_tokens=5000)
    first = load_corpus(spec, cache)
    stamp = first.train_path.stat().st_mtime_ns
    again = load_corpus(spec, cache)
    assert again.directory == first.directory
    assert again.train_path.stat().st_mtime_ns == stamp
    other = load_corpus(CorpusSpec(roots=(f"dir:{doc_root}",), val_tokens=6000), cache)
    assert other.corpus_hash != first.corpus_hash
    assert other.directory != first.directory


def test_concurrent_first_use_builds_one_consistent_cache(doc_root: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    spec = CorpusSpec(roots=(f"dir:{doc_root}",), val_tokens=5000)
    results = []
    errors: list[BaseException] = []

    def build() -> None:
        try:
            results.append(load_corpus(spec, cache))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=build) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len({r.directory for r in results}) == 1
    assert [p.name for p in cache.iterdir()] == [results[0].directory.name]


def test_too_small_corpus_is_refused(doc_root: Path, tmp_path: Path) -> None:
    with pytest.raises(CorpusError):
        load_corpus(CorpusSpec(roots=(f"dir:{doc_root}",), val_tokens=10**7), tmp_path)


def test_stdlib_corpus_is_available_offline(tmp_path: Path) -> None:
    corpus = load_corpus(
        CorpusSpec(roots=("stdlib",), max_bytes=300_000, val_tokens=20_000), tmp_path
    )
    assert corpus.corpus_id == "python-stdlib-300000B"
    assert 200_000 < corpus.train_tokens < 300_000
    assert len(corpus.corpus_hash) == len(corpus.tokenizer_hash) == 64
