"""The offline corpus: Python sources on this machine, a sha256 manifest, a cached token memmap.

The stdlib differs between interpreters, so the manifest (and its hash) is computed on every
machine and recorded in each result; the service keeps one corpus hash per experiment.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sysconfig
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from service.trainer.config import CorpusSpec
from service.trainer.errors import CorpusError
from service.trainer.tokenizer import DOC_SEPARATOR, get_tokenizer

MANIFEST_VERSION = 1


@dataclass(frozen=True)
class ManifestEntry:
    path: str
    size_bytes: int
    sha256: str


@dataclass(frozen=True)
class Corpus:
    """A built corpus: token memmaps on disk plus its identity."""

    corpus_id: str
    corpus_hash: str
    tokenizer_hash: str
    directory: Path
    train_tokens: int
    val_tokens: int
    n_documents: int
    n_val_documents: int
    token_dtype: str

    @property
    def train_path(self) -> Path:
        return self.directory / "train.bin"

    @property
    def val_path(self) -> Path:
        return self.directory / "val.bin"


def default_cache_dir() -> Path:
    return Path(os.environ.get("SCALING_CACHE_DIR", "var/corpus"))


def _root_dir(root: str) -> tuple[str, Path]:
    if root == "stdlib":
        return "stdlib", Path(sysconfig.get_paths()["stdlib"])
    if root == "site":
        return "site", Path(sysconfig.get_paths()["purelib"])
    path = Path(root.removeprefix("dir:"))
    return path.name or "dir", path


def _source_files(spec: CorpusSpec) -> Iterator[tuple[str, Path]]:
    """Python files root by root, in a fixed order (sorted walk), lazily: with a byte cap only
    the files that are used get listed, which matters for a large site-packages."""
    for root in spec.roots:
        label, base = _root_dir(root)
        if not base.is_dir():
            raise CorpusError(f"corpus root {base} is not a directory")
        for dirpath, dirnames, filenames in os.walk(base):
            here = Path(dirpath)
            # The stdlib folder holds site-packages; that belongs to the "site" root.
            if root == "stdlib" and here == base:
                dirnames[:] = [d for d in dirnames if d not in ("site-packages", "dist-packages")]
            dirnames.sort()
            for name in sorted(filenames):
                path = here / name
                if name.endswith(".py") and path.is_file() and not path.is_symlink():
                    yield f"{label}/{path.relative_to(base).as_posix()}", path


def _scan(spec: CorpusSpec) -> tuple[list[ManifestEntry], dict[str, Path]]:
    entries: list[ManifestEntry] = []
    paths: dict[str, Path] = {}
    total = 0
    for rel, path in _source_files(spec):
        if spec.max_bytes is not None:
            if total >= spec.max_bytes - 4096:
                break
            # Skip (rather than stop at) a file that would overflow the cap.
            if total + path.stat().st_size > spec.max_bytes:
                continue
        data = path.read_bytes()
        if not data or bytes([DOC_SEPARATOR]) in data:
            continue
        if spec.max_bytes is not None and total + len(data) > spec.max_bytes:
            continue
        total += len(data)
        entries.append(ManifestEntry(rel, len(data), hashlib.sha256(data).hexdigest()))
        paths[rel] = path
    if not entries:
        raise CorpusError(f"no source files found for {spec.roots}")
    return entries, paths


def _corpus_hash(spec: CorpusSpec, entries: list[ManifestEntry]) -> str:
    digest = hashlib.sha256()
    digest.update(f"v{MANIFEST_VERSION} val={spec.val_tokens} max={spec.max_bytes}\n".encode())
    for e in entries:
        digest.update(f"{e.path}\t{e.size_bytes}\t{e.sha256}\n".encode())
    return digest.hexdigest()


def build_manifest(spec: CorpusSpec) -> tuple[list[ManifestEntry], str]:
    """Hash every included file; return the entries and the corpus hash (content + split)."""
    entries, _ = _scan(spec)
    return entries, _corpus_hash(spec, entries)


def _val_documents(entries: list[ManifestEntry], val_tokens: int) -> set[str]:
    """Documents for validation, in an order fixed by their path hash, until val_tokens is met."""
    order = sorted(entries, key=lambda e: hashlib.sha256(e.path.encode()).hexdigest())
    chosen: set[str] = set()
    size = 0
    for e in order:
        if size >= val_tokens:
            break
        chosen.add(e.path)
        size += e.size_bytes + 1
    if size < val_tokens or len(chosen) == len(entries):
        raise CorpusError(f"corpus too small for {val_tokens} validation tokens")
    return chosen


def _write_split(
    spec: CorpusSpec, entries: list[ManifestEntry], roots: dict[str, Path], directory: Path
) -> tuple[int, int, int]:
    tokenizer = get_tokenizer(spec.tokenizer)
    val_docs = _val_documents(entries, spec.val_tokens)
    sep = np.array([DOC_SEPARATOR], dtype=tokenizer.dtype)
    n_train = n_val = 0
    with (directory / "train.bin").open("wb") as train, (directory / "val.bin").open("wb") as val:
        for e in entries:
            data = roots[e.path].read_bytes()
            if hashlib.sha256(data).hexdigest() != e.sha256:
                raise CorpusError(f"{e.path} changed while the corpus was built")
            tokens = np.concatenate([tokenizer.encode(data), sep])
            if e.path in val_docs:
                tokens = tokens[: spec.val_tokens - n_val]
                val.write(tokens.tobytes())
                n_val += len(tokens)
            else:
                train.write(tokens.tobytes())
                n_train += len(tokens)
    return n_train, n_val, len(val_docs)


def load_corpus(spec: CorpusSpec, cache_dir: str | Path | None = None) -> Corpus:
    """Build the corpus once per (corpus hash, tokenizer) and reuse it; safe under concurrency."""
    tokenizer = get_tokenizer(spec.tokenizer)
    entries, paths = _scan(spec)
    corpus_hash = _corpus_hash(spec, entries)
    cache_root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    final = cache_root / f"{corpus_hash[:16]}-{tokenizer.tokenizer_hash[:8]}"
    meta_path = final / "meta.json"
    if not meta_path.exists():
        cache_root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".building-", dir=cache_root))
        try:
            n_train, n_val, n_val_docs = _write_split(spec, entries, paths, tmp)
            meta = {
                "corpus_id": spec.corpus_id,
                "corpus_hash": corpus_hash,
                "tokenizer": tokenizer.name,
                "tokenizer_hash": tokenizer.tokenizer_hash,
                "train_tokens": n_train,
                "val_tokens": n_val,
                "n_documents": len(entries),
                "n_val_documents": n_val_docs,
                "token_dtype": np.dtype(tokenizer.dtype).name,
            }
            (tmp / "manifest.json").write_text(json.dumps([e.__dict__ for e in entries], indent=0))
            (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
            # Atomic publish: a concurrent builder that loses the race discards its copy.
            os.rename(tmp, final)
        except OSError:
            if not meta_path.exists():
                raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    meta = json.loads(meta_path.read_text())
    return Corpus(
        corpus_id=meta["corpus_id"],
        corpus_hash=meta["corpus_hash"],
        tokenizer_hash=meta["tokenizer_hash"],
        directory=final,
        train_tokens=int(meta["train_tokens"]),
        val_tokens=int(meta["val_tokens"]),
        n_documents=int(meta["n_documents"]),
        n_val_documents=int(meta["n_val_documents"]),
        token_dtype=str(meta["token_dtype"]),
    )
