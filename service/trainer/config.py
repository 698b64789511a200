"""Frozen training configuration: model shape, budget, recipe overrides, runtime."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from itertools import pairwise
from typing import Any, Literal

from service.scaling.shape_family import ShapeFamily
from service.scaling.shapes import ModelShape as FamilyShape
from service.trainer.errors import ConfigError

CompileMode = Literal["auto", "on", "off"]
DEFAULT_CONTEXT_TOKENS = 1024
DEFAULT_VOCAB_SIZE = 256  # the byte tokenizer
DType = Literal["float32", "bfloat16"]
# cosine: one point, the loss at the end of the schedule. wsd: warmup, a constant-lr trunk and a
# cooldown branch per entry of branch_tokens, one point each (see service.trainer.schedule).
Schedule = Literal["cosine", "wsd"]


@dataclass(frozen=True)
class ModelShape:
    """GPT decoder shape; d_ff is 4 * d_model."""

    n_layer: int
    d_model: int
    n_head: int
    context_tokens: int = DEFAULT_CONTEXT_TOKENS
    vocab_size: int = DEFAULT_VOCAB_SIZE

    def __post_init__(self) -> None:
        if min(self.n_layer, self.d_model, self.n_head, self.context_tokens, self.vocab_size) < 1:
            raise ConfigError(f"all shape fields must be positive: {self}")
        if self.d_model % self.n_head:
            raise ConfigError(f"d_model {self.d_model} not divisible by n_head {self.n_head}")
        if (self.d_model // self.n_head) % 2:
            raise ConfigError("head dimension must be even (rotary embeddings)")


def _from_family(shape: FamilyShape, context_tokens: int, vocab_size: int) -> ModelShape:
    return ModelShape(shape.n_layer, shape.d_model, shape.n_heads, context_tokens, vocab_size)


def shape_for_params(
    params: float,
    context_tokens: int = DEFAULT_CONTEXT_TOKENS,
    vocab_size: int = DEFAULT_VOCAB_SIZE,
) -> ModelShape:
    """The shape of the family (service.scaling.shape_family, the planner's too) whose total
    parameters (tied embedding counted once) are nearest to ``params``."""
    if params <= 0:
        raise ConfigError("target params must be positive")
    family = ShapeFamily(vocab_size, context_tokens)
    return _from_family(family.snap(params), context_tokens, vocab_size)


def shape_for_non_embedding_params(
    non_embedding_params: float,
    context_tokens: int = DEFAULT_CONTEXT_TOKENS,
    vocab_size: int = DEFAULT_VOCAB_SIZE,
) -> ModelShape:
    """The shape of the family whose non-embedding parameters are nearest."""
    if non_embedding_params <= 0:
        raise ConfigError("target params must be positive")
    family = ShapeFamily(vocab_size, context_tokens)
    return _from_family(
        family.nearest_non_embedding(non_embedding_params), context_tokens, vocab_size
    )


@dataclass(frozen=True)
class CorpusSpec:
    """Which Python sources make the corpus, and how it is split.

    roots: "stdlib", "site" (the interpreter's purelib) or "dir:/abs/path".
    """

    roots: tuple[str, ...] = ("stdlib",)
    max_bytes: int | None = None
    val_tokens: int = 1_000_000
    tokenizer: Literal["byte"] = "byte"

    def __post_init__(self) -> None:
        if not self.roots:
            raise ConfigError("corpus needs at least one root")
        for root in self.roots:
            if root not in ("stdlib", "site") and not root.startswith("dir:"):
                raise ConfigError(f"unknown corpus root {root!r}")
        if self.val_tokens < 1:
            raise ConfigError("val_tokens must be positive")

    @property
    def corpus_id(self) -> str:
        cap = f"-{self.max_bytes}B" if self.max_bytes else ""
        return "python-" + "+".join(r.split("/")[-1] for r in self.roots) + cap


@dataclass(frozen=True)
class TrainConfig:
    """One training run. Give exactly one of tokens and target_flops (6 * total params * tokens).

    None for batch_tokens, lr or beta2 means: take it from the per-scale recipe.

    schedule "wsd": tokens (or target_flops) is the horizon that sets the recipe (batch, lr,
    warmup); each of branch_tokens (default: the horizon alone), at most the horizon, is a
    point: the trunk's checkpoint at (1 - cooldown_fraction) of it, cooled down (1-sqrt shape,
    to min_lr_ratio * peak) to end there. branch_tokens need "wsd"; cosine ignores
    cooldown_fraction.
    """

    shape: ModelShape
    tokens: int | None = None
    target_flops: float | None = None
    batch_tokens: int | None = None
    micro_batch_seqs: int | None = None
    lr: float | None = None
    warmup_frac: float = 0.02
    min_lr_ratio: float = 0.1
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float | None = None
    grad_clip: float = 1.0
    seed: int = 0
    device: str = "auto"
    dtype: DType | None = None
    compile: CompileMode = "auto"
    compile_min_params: int = 3_000_000
    threads: int | None = None
    corpus: CorpusSpec = field(default_factory=CorpusSpec)
    cache_dir: str | None = None
    eval_tokens: int = 262_144
    eval_batch_seqs: int = 16
    time_limit_s: float | None = None
    loss_curve_points: int = 48
    diverge_factor: float = 1.5
    schedule: Schedule = "cosine"
    branch_tokens: tuple[int, ...] = ()
    cooldown_fraction: float = 0.2

    def __post_init__(self) -> None:
        if (self.tokens is None) == (self.target_flops is None):
            raise ConfigError("give exactly one of tokens and target_flops")
        if self.tokens is not None and self.tokens < 1:
            raise ConfigError("tokens must be positive")
        if self.target_flops is not None and self.target_flops <= 0:
            raise ConfigError("target_flops must be positive")
        if self.batch_tokens is not None and self.batch_tokens < self.shape.context_tokens:
            raise ConfigError("batch_tokens must hold at least one sequence")
        if not 0 <= self.warmup_frac < 1 or not 0 <= self.min_lr_ratio <= 1:
            raise ConfigError("warmup_frac must be in [0, 1) and min_lr_ratio in [0, 1]")
        if self.eval_tokens < self.shape.context_tokens:
            raise ConfigError("eval_tokens must hold at least one sequence")
        if self.dtype not in (None, "float32", "bfloat16"):
            raise ConfigError(f"dtype must be float32 or bfloat16, not {self.dtype!r}")
        if self.compile not in ("auto", "on", "off"):
            raise ConfigError(f"compile must be auto, on or off, not {self.compile!r}")
        if self.device != "auto" and self.device.split(":")[0] not in ("cpu", "cuda", "mps"):
            raise ConfigError(f"unknown device {self.device!r}")
        self._check_schedule()

    def _check_schedule(self) -> None:
        if self.schedule not in ("cosine", "wsd"):
            raise ConfigError(f"schedule must be cosine or wsd, not {self.schedule!r}")
        if not 0 < self.cooldown_fraction <= 1:
            raise ConfigError("cooldown_fraction must be in (0, 1]")
        if self.schedule == "cosine":
            if self.branch_tokens:
                raise ConfigError("branch_tokens need schedule wsd")
            return
        branches = self.branch_tokens
        if any(not isinstance(d, int) or isinstance(d, bool) or d < 1 for d in branches):
            raise ConfigError("branch_tokens must be positive integers")
        if any(a >= b for a, b in pairwise(branches)):
            raise ConfigError("branch_tokens must be strictly increasing")
        # Past the horizon is make_branches' check: both round to whole batches, and a branch
        # at the horizon may round up past the raw token count by part of a batch.

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["corpus"]["roots"] = list(self.corpus.roots)
        data["branch_tokens"] = list(self.branch_tokens)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Build from JSON-like data; `shape` is a full shape, or {"params": N} (total) or
        {"non_embedding_params": N}, with optional context_tokens and vocab_size: the nearest
        shape of the family."""
        if not isinstance(data, dict):
            raise ConfigError("config must be an object")
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ConfigError(f"unknown config fields: {sorted(unknown)}")
        kwargs = dict(data)
        try:
            shape = kwargs.pop("shape")
            if "params" in shape:
                extra = {k: v for k, v in shape.items() if k != "params"}
                kwargs["shape"] = shape_for_params(float(shape["params"]), **extra)
            elif "non_embedding_params" in shape:
                extra = {k: v for k, v in shape.items() if k != "non_embedding_params"}
                kwargs["shape"] = shape_for_non_embedding_params(
                    float(shape["non_embedding_params"]), **extra
                )
            else:
                kwargs["shape"] = ModelShape(**shape)
            corpus = kwargs.pop("corpus", None)
            if corpus is not None:
                corpus = dict(corpus)
                if "roots" in corpus:
                    corpus["roots"] = tuple(corpus["roots"])
                kwargs["corpus"] = CorpusSpec(**corpus)
            if "branch_tokens" in kwargs:
                # JSON writers may send 1e6 for 1000000: integral numbers are token counts.
                kwargs["branch_tokens"] = tuple(
                    int(d) if isinstance(d, float) and d.is_integer() else d
                    for d in kwargs["branch_tokens"]
                )
            return cls(**kwargs)
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(str(exc)) from exc
