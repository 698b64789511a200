"""train(config) -> TrainResult: the training loop, evaluation and accounting."""

from __future__ import annotations

import hashlib
import math
import platform
import resource
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch

from service.trainer.config import TrainConfig
from service.trainer.corpus import load_corpus
from service.trainer.counts import flops_with_attention, param_counts
from service.trainer.data import TokenData
from service.trainer.hardware import peak_flops
from service.trainer.model import GPT
from service.trainer.recipe import Plan, lr_at, make_plan
from service.trainer.result import Status, TrainResult
from service.trainer.tokenizer import get_tokenizer

FLOPS_FORMULA = (
    "flops_6nd = 6 * (non_embedding + head params) * tokens; "
    "flops_with_attention = flops_6nd + 12 * n_layer * d_model * context * tokens"
)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _autocast(device: torch.device, dtype: str) -> AbstractContextManager[object]:
    if dtype == "bfloat16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return nullcontext()


def _code_version() -> str:
    """A hash of the trainer's own sources: unlike a git revision it stays true when the code
    travels without its repository (or inside another one)."""
    digest = hashlib.sha256()
    for path in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return "trainer-sha256:" + digest.hexdigest()[:16]


def _peak_memory_bytes(device: torch.device) -> int:
    """Peak tensor memory on a GPU; on the CPU, the process's peak resident set (Linux KiB)."""
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _curve_steps(steps: int, points: int) -> set[int]:
    """Log-spaced step indices (1-based), always including the first and last."""
    marks = {1, steps}
    for i in range(points):
        marks.add(max(1, min(steps, round(steps ** (i / max(1, points - 1))))))
    return marks


def make_optimizer(model: GPT, plan: Plan, config: TrainConfig, fused: bool) -> torch.optim.AdamW:
    """Weight decay on matrices only: norms and the (tied) embedding are not decayed."""
    decay = [p for n, p in model.named_parameters() if p.dim() == 2 and n != "embed.weight"]
    other = [p for n, p in model.named_parameters() if p.dim() != 2 or n == "embed.weight"]
    groups = [
        {"params": decay, "weight_decay": config.weight_decay},
        {"params": other, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(
        groups, lr=plan.peak_lr, betas=(config.beta1, plan.beta2), eps=1e-8, fused=fused or None
    )


@torch.no_grad()
def evaluate(model: torch.nn.Module, data: TokenData, config: TrainConfig, dtype: str) -> float:
    """Mean validation loss over the fixed first eval_tokens of the validation split."""
    model.eval()
    total = 0.0
    count = 0
    for x, y in data.val_batches(config.eval_tokens, config.eval_batch_seqs):
        with _autocast(data.device, dtype):
            logits = model(x)
        loss = torch.nn.functional.cross_entropy(
            logits.float().view(-1, logits.size(-1)), y.reshape(-1), reduction="sum"
        )
        total += float(loss)
        count += y.numel()
    model.train()
    return total / count


Progress = Callable[[int, int, float], None]


LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class _Run:
    model: torch.nn.Module
    step_loss: LossFn
    optimizer: torch.optim.Optimizer
    data: TokenData
    data_gen: torch.Generator
    plan: Plan
    config: TrainConfig
    device: torch.device
    dtype: str


@dataclass(frozen=True)
class _Outcome:
    status: Status
    steps_done: int
    curve: list[tuple[int, float]]
    train_time_s: float
    tokens_per_s: float


class _LossReader:
    """Reads the device's step losses back in batches: a read waits for the GPU, and one per
    step left it idle while the host queued the next step (most steps of a short run are
    curve marks). Checks for nan and divergence at each read, so they stop a run a few steps
    late at most."""

    def __init__(self, run: _Run, progress: Progress | None, marks: set[int]) -> None:
        self.run, self.progress, self.marks = run, progress, marks
        self.pending: list[tuple[int, torch.Tensor]] = []
        self.curve: list[tuple[int, float]] = []
        self.initial_loss = math.log(run.config.shape.vocab_size)

    def add(self, step: int, mean_loss: torch.Tensor) -> None:
        self.pending.append((step, mean_loss))

    def due(self, step: int) -> bool:
        return len(self.pending) >= 8 or step % 100 == 0 or step == self.run.plan.steps

    def read(self) -> Status:
        """Reads what is pending; the status after the first bad value, or "ok"."""
        pending, self.pending = self.pending, []
        values = torch.stack([t for _, t in pending]).tolist() if pending else []
        for (step, _), value in zip(pending, values, strict=True):
            if step in self.marks:
                self.curve.append((step, value))
            if self.progress is not None:
                self.progress(step, self.run.plan.steps, value)
            if not math.isfinite(value):
                return "nan"
            diverge_at = self.run.config.diverge_factor * self.initial_loss
            if step > self.run.plan.warmup_steps and value > diverge_at:
                return "diverged"
        return "ok"


def _run_steps(run: _Run, progress: Progress | None, wall_start: float) -> _Outcome:
    """The optimisation steps; stops early on nan, divergence or the time limit."""
    reader = _LossReader(run, progress, _curve_steps(run.plan.steps, run.config.loss_curve_points))
    status: Status = "ok"
    steps_done = 0
    # Steady-state speed excludes the first steps, which pay for compilation.
    timed_from = min(run.plan.steps - 1, 3)
    timed_start = time.perf_counter()
    train_start = time.perf_counter()
    for step in range(run.plan.steps):
        if step == timed_from:
            if run.device.type == "cuda":
                torch.cuda.synchronize(run.device)
            timed_start = time.perf_counter()
        lr = lr_at(step, run.plan, run.config.min_lr_ratio)
        for group in run.optimizer.param_groups:
            group["lr"] = lr
        loss_sum = torch.zeros((), device=run.device)
        for _ in range(run.plan.accum_steps):
            x, y = run.data.sample(run.plan.micro_batch_seqs, run.data_gen)
            with _autocast(run.device, run.dtype):
                loss = run.step_loss(x, y)
            (loss / run.plan.accum_steps).backward()  # type: ignore[no-untyped-call]
            loss_sum += loss.detach()
        torch.nn.utils.clip_grad_norm_(run.model.parameters(), run.config.grad_clip)
        run.optimizer.step()
        run.optimizer.zero_grad(set_to_none=True)
        steps_done = step + 1
        if steps_done in reader.marks or steps_done % 100 == 0:
            reader.add(steps_done, loss_sum / run.plan.accum_steps)
        if reader.due(steps_done):
            status = reader.read()
            if status != "ok":
                break
        if (
            run.config.time_limit_s is not None
            and time.perf_counter() - wall_start > run.config.time_limit_s
        ):
            status = "timeout"
            break
    if status == "timeout":
        reader.read()
    if run.device.type == "cuda":
        torch.cuda.synchronize(run.device)
    end = time.perf_counter()
    train_time = end - train_start
    timed_steps = steps_done - timed_from
    step_tokens = run.plan.batch_seqs * run.config.shape.context_tokens
    if timed_steps > 0 and end > timed_start:
        tokens_per_s = timed_steps * step_tokens / (end - timed_start)
    else:
        tokens_per_s = steps_done * step_tokens / max(train_time, 1e-9)

    return _Outcome(status, steps_done, reader.curve, train_time, tokens_per_s)


def train(config: TrainConfig, progress: Progress | None = None) -> TrainResult:
    """Train one model as configured; never raises for nan, divergence or timeout.

    progress(step, steps, train_loss) is called whenever the loss is read back.
    """
    wall_start = time.perf_counter()
    device = resolve_device(config.device)
    dtype = config.dtype or ("bfloat16" if device.type == "cuda" else "float32")
    if config.threads:
        torch.set_num_threads(config.threads)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.cuda.reset_peak_memory_stats(device)
    shape = config.shape
    counts = param_counts(shape)
    plan = make_plan(config)
    corpus = load_corpus(config.corpus, config.cache_dir)
    data = TokenData(corpus, shape.context_tokens, device)

    init_gen = torch.Generator().manual_seed(config.seed)
    model = GPT(shape, generator=init_gen).to(device)
    optimizer = make_optimizer(model, plan, config, fused=device.type == "cuda")
    use_compile = config.compile == "on" or (
        config.compile == "auto"
        and device.type == "cuda"
        and counts.non_embedding_params >= config.compile_min_params
    )
    # The loss is compiled with the model: the fp32 logits then never exist as a whole tensor.
    step_loss: LossFn = torch.compile(model.loss) if use_compile else model.loss
    data_gen = torch.Generator(device=device).manual_seed(config.seed + 1)

    outcome = _run_steps(
        _Run(model, step_loss, optimizer, data, data_gen, plan, config, device, dtype),
        progress,
        wall_start,
    )
    status, steps_done, curve = outcome.status, outcome.steps_done, outcome.curve
    train_time, tokens_per_s = outcome.train_time_s, outcome.tokens_per_s
    step_tokens = plan.batch_seqs * shape.context_tokens
    warnings: list[str] = []
    tokens = steps_done * step_tokens
    val_loss = evaluate(model, data, config, dtype) if status == "ok" else None
    if val_loss is not None and not math.isfinite(val_loss):
        status, val_loss = "nan", None
    bytes_per_token = get_tokenizer(config.corpus.tokenizer).bytes_per_token()
    epochs = tokens / corpus.train_tokens
    if epochs > 4:
        warnings.append(f"{epochs:.1f} epochs over the unique training data (more than 4)")
    device_name = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else platform.processor() or "cpu"
    )
    peak = peak_flops(device_name, dtype) if device.type == "cuda" else None
    per_token_flops = flops_with_attention(shape, 1)
    achieved = tokens_per_s * per_token_flops
    return TrainResult(
        status=status,
        config=config.to_dict(),
        non_embedding_params=counts.non_embedding_params,
        embedding_params=counts.embedding_params,
        head_params=counts.head_params,
        total_params=counts.total_params,
        tokens=tokens,
        steps=steps_done,
        batch_tokens=step_tokens,
        peak_lr=plan.peak_lr,
        beta2=plan.beta2,
        warmup_steps=plan.warmup_steps,
        epochs=epochs,
        flops_6nd=6.0 * (counts.non_embedding_params + counts.head_params) * tokens,
        flops_with_attention=flops_with_attention(shape, tokens),
        flops_formula=FLOPS_FORMULA,
        val_loss=val_loss,
        val_bits_per_byte=None if val_loss is None else val_loss / math.log(2) / bytes_per_token,
        train_loss_curve=curve,
        wall_time_s=time.perf_counter() - wall_start,
        train_time_s=train_time,
        tokens_per_s=tokens_per_s,
        flops_per_s=achieved,
        mfu=achieved / peak if peak else None,
        peak_flops_per_s=peak,
        peak_memory_bytes=_peak_memory_bytes(device),
        corpus_id=corpus.corpus_id,
        corpus_hash=corpus.corpus_hash,
        tokenizer_hash=corpus.tokenizer_hash,
        unique_train_tokens=corpus.train_tokens,
        versions={
            "torch": torch.__version__,
            "python": platform.python_version(),
            "device": device_name,
            "dtype": dtype,
            "compiled": str(use_compile),
            "code": _code_version(),
        },
        warnings=warnings,
    )
