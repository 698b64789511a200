"""A plain GPT timed beside the trainer: SDPA, learned positions, stock AdamW; eager or compiled.

It is the baseline the trainer's speed is compared against in the same run.
"""

from __future__ import annotations

import time

import torch
from torch import Tensor, nn
from torch.nn import functional as F  # noqa: N812


class PlainBlock(nn.Module):
    def __init__(self, d: int, n_head: int) -> None:
        super().__init__()
        self.n_head = n_head
        self.ln1 = nn.LayerNorm(d)
        self.attn = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.ln2 = nn.LayerNorm(d)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))

    def forward(self, x: Tensor) -> Tensor:
        b, t, d = x.shape
        q, k, v = self.attn(self.ln1(x)).split(d, dim=-1)
        q, k, v = (z.view(b, t, self.n_head, -1).transpose(1, 2) for z in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.proj(y.transpose(1, 2).reshape(b, t, d))
        out: Tensor = x + self.mlp(self.ln2(x))
        return out


class PlainGPT(nn.Module):
    def __init__(self, vocab: int, context: int, n_layer: int, d: int, n_head: int) -> None:
        super().__init__()
        self.tok = nn.Embedding(vocab, d)
        self.pos = nn.Embedding(context, d)
        self.blocks = nn.Sequential(*[PlainBlock(d, n_head) for _ in range(n_layer)])
        self.ln_f = nn.LayerNorm(d)
        self.head = nn.Linear(d, vocab, bias=False)
        self.head.weight = self.tok.weight

    def forward(self, idx: Tensor) -> Tensor:
        pos = torch.arange(idx.shape[1], device=idx.device)
        out: Tensor = self.head(self.ln_f(self.blocks(self.tok(idx) + self.pos(pos))))
        return out


def time_reference(
    vocab: int,
    context: int,
    n_layer: int,
    d: int,
    n_head: int,
    micro_batch_seqs: int,
    accum_steps: int,
    steps: int,
    device: torch.device,
    *,
    compile: bool = False,
) -> float:
    """Tokens/s of the plain model's training steps after three warm-up steps (which pay for
    compilation when compile=True: torch.compile of the model, nothing else changed)."""
    model = PlainGPT(vocab, context, n_layer, d, n_head).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    step_model = torch.compile(model) if compile else model
    x = torch.randint(0, vocab, (micro_batch_seqs, context + 1), device=device)
    use_bf16 = device.type == "cuda"
    start = time.perf_counter()
    for step in range(steps + 3):
        if step == 3:
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            start = time.perf_counter()
        for _ in range(accum_steps):
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
                logits = step_model(x[:, :-1])
            loss = F.cross_entropy(logits.float().view(-1, vocab), x[:, 1:].reshape(-1))
            loss.backward()  # type: ignore[no-untyped-call]
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return steps * accum_steps * micro_batch_seqs * context / (time.perf_counter() - start)
