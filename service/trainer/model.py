"""GPT-style decoder: pre-LN, rotary positions, SDPA causal attention, tied embeddings."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F  # noqa: N812

from service.trainer.config import ModelShape
from service.trainer.rotary import apply_rotary, rotary_tables


class Block(nn.Module):
    def __init__(self, shape: ModelShape) -> None:
        super().__init__()
        d = shape.d_model
        self.n_head = shape.n_head
        self.ln1 = nn.LayerNorm(d, bias=False)
        self.qkv = nn.Linear(d, 3 * d, bias=False)
        self.proj = nn.Linear(d, d, bias=False)
        self.ln2 = nn.LayerNorm(d, bias=False)
        self.fc = nn.Linear(d, 4 * d, bias=False)
        self.fc_out = nn.Linear(4 * d, d, bias=False)

    def forward(self, x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
        b, t, d = x.shape
        qkv = self.qkv(self.ln1(x)).view(b, t, 3, self.n_head, d // self.n_head)
        # q and k rotated in one pass (half the kernel launches of rotating each); split and
        # unbind, whose backward is one cat or stack, where slices would each fill a zero
        # tensor of qkv's size in eager mode.
        qk, v = qkv.split((2, 1), dim=2)
        qk = apply_rotary(qk, cos[:t].to(qkv.dtype), sin[:t].to(qkv.dtype))
        q, k = qk.unbind(2)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.squeeze(2).transpose(1, 2)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.proj(y.transpose(1, 2).reshape(b, t, d))
        out: Tensor = x + self.fc_out(F.gelu(self.fc(self.ln2(x)), approximate="tanh"))
        return out


class GPT(nn.Module):
    def __init__(self, shape: ModelShape, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.shape = shape
        self.embed = nn.Embedding(shape.vocab_size, shape.d_model)
        self.blocks = nn.ModuleList(Block(shape) for _ in range(shape.n_layer))
        self.ln_f = nn.LayerNorm(shape.d_model, bias=False)
        cos, sin = rotary_tables(shape.d_model // shape.n_head, shape.context_tokens)
        self.register_buffer("cos", cos, persistent=False)
        self.register_buffer("sin", sin, persistent=False)
        self.reset_parameters(generator)

    def reset_parameters(self, generator: torch.Generator | None) -> None:
        """Normal(0, 0.02); residual outputs scaled by 1/sqrt(2 n_layer) (GPT-2) so the
        residual stream's variance does not grow with depth."""
        std = 0.02
        nn.init.normal_(self.embed.weight, std=std, generator=generator)
        for block in self.blocks:
            assert isinstance(block, Block)
            for lin in (block.qkv, block.fc):
                nn.init.normal_(lin.weight, std=std, generator=generator)
            for lin in (block.proj, block.fc_out):
                nn.init.normal_(
                    lin.weight, std=std / math.sqrt(2 * self.shape.n_layer), generator=generator
                )

    def forward(self, tokens: Tensor) -> Tensor:
        """Logits (batch, time, vocab); the head reuses the embedding matrix."""
        x = self.embed(tokens)
        cos, sin = self.cos, self.sin
        assert isinstance(cos, Tensor)
        assert isinstance(sin, Tensor)
        for block in self.blocks:
            x = block(x, cos, sin)
        return F.linear(self.ln_f(x), self.embed.weight)

    def loss(self, tokens: Tensor, targets: Tensor) -> Tensor:
        """Mean next-token cross-entropy, nats/token, computed in float32."""
        logits = self(tokens)
        return F.cross_entropy(logits.float().view(-1, logits.size(-1)), targets.reshape(-1))
