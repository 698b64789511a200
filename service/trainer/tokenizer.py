"""Byte-level tokenizer: one token per byte, vocabulary 256, no dependency."""

from __future__ import annotations

import hashlib

import numpy as np
import numpy.typing as npt

# NUL never occurs in Python source, so it serves as the document separator.
DOC_SEPARATOR = 0


class ByteTokenizer:
    name = "byte-v1"
    vocab_size = 256
    dtype = np.uint8

    @property
    def tokenizer_hash(self) -> str:
        return hashlib.sha256(f"{self.name}:{self.vocab_size}".encode()).hexdigest()

    def encode(self, data: bytes) -> npt.NDArray[np.uint8]:
        return np.frombuffer(data, dtype=np.uint8)

    def bytes_per_token(self) -> float:
        return 1.0


def get_tokenizer(name: str) -> ByteTokenizer:
    if name != "byte":
        raise ValueError(f"unknown tokenizer {name!r}")
    return ByteTokenizer()
