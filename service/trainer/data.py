"""Batches from the cached token memmaps; the token arrays live on the training device."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch import Tensor

from service.trainer.corpus import Corpus


class TokenData:
    """Random training windows and fixed validation windows of context + 1 tokens."""

    def __init__(self, corpus: Corpus, context_tokens: int, device: torch.device) -> None:
        self.context_tokens = context_tokens
        self.device = device
        train = np.memmap(corpus.train_path, dtype=corpus.token_dtype, mode="r")
        val = np.memmap(corpus.val_path, dtype=corpus.token_dtype, mode="r")
        if len(train) <= context_tokens + 1 or len(val) <= context_tokens + 1:
            raise ValueError("corpus shorter than one context window")
        # Whole corpus on the device: index arithmetic there avoids a host-side input pipeline.
        self.train = torch.from_numpy(
            np.array(train, dtype=np.int16 if train.dtype == np.uint8 else np.int32)
        ).to(device)
        self.val = torch.from_numpy(np.array(val, dtype=np.int32)).to(device)
        self.offsets = torch.arange(context_tokens + 1, device=device)

    @property
    def train_tokens(self) -> int:
        return int(self.train.numel())

    def sample(self, batch_seqs: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """Uniformly placed windows; the generator lives on the training device so sampling
        needs no host-device copy (which would stall the queue of kernels)."""
        high = self.train_tokens - self.context_tokens - 1
        starts = torch.randint(0, high, (batch_seqs, 1), generator=generator, device=self.device)
        window = self.train[starts + self.offsets].long()
        return window[:, :-1], window[:, 1:]

    def val_batches(self, eval_tokens: int, batch_seqs: int) -> Iterator[tuple[Tensor, Tensor]]:
        """Consecutive non-overlapping windows from the start of the validation split."""
        t = self.context_tokens
        n_seqs = max(1, min(eval_tokens, self.val.numel() - 1) // t)
        for first in range(0, n_seqs, batch_seqs):
            count = min(batch_seqs, n_seqs - first)
            starts = torch.arange(first, first + count, device=self.device)[:, None] * t
            window = self.val[starts + self.offsets].long()
            yield window[:, :-1], window[:, 1:]
