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
from functools import partial
from pathlib import Path
from typing import TypeVar

import torch

from service.trainer.checkpoint import Checkpoint
from service.trainer.config import TrainConfig
from service.trainer.corpus import load_corpus
from service.trainer.counts import flops_6nd, flops_with_attention, param_counts
from service.trainer.data import TokenData
from service.trainer.hardware import peak_flops
from service.trainer.model import GPT
from service.trainer.recipe import Plan, lr_at, make_plan
from service.trainer.result import Status, TrainPoint, TrainResult
from service.trainer.schedule import Branch, make_branches, wsd_lr_at
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
T = TypeVar("T")


LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class _Run:
    model: torch.nn.Module
    step_loss: LossFn
    optimizer: torch.optim.Optimizer
    data: TokenData
    data_gen: torch.Generator
    plan: Plan
    branches: tuple[Branch, ...]  # wsd only
    config: TrainConfig
    device: torch.device
    dtype: str


@dataclass(frozen=True)
class _Outcome:
    status: Status
    steps_done: int  # the schedule's position: steps behind the last point (or the failure)
    work_steps: int  # optimizer steps taken: the trunk once plus every cooldown
    curve: list[tuple[int, float]]
    train_time_s: float
    tokens_per_s: float


@dataclass(frozen=True)
class _Pending:
    step: int  # the schedule's step (1-based)
    work_step: int  # optimizer steps taken so far in this run (1-based)
    loss: torch.Tensor
    curve: list[tuple[int, float]] | None  # where to keep the value, if anywhere


class _LossReader:
    """Reads the device's step losses back in batches: a read waits for the GPU, and one per
    step left it idle while the host queued the next step (most steps of a short run are
    curve marks). Checks for nan and divergence at each read, so they stop a run a few steps
    late at most."""

    def __init__(self, run: _Run, progress: Progress | None, work_total: int) -> None:
        self.run, self.progress, self.work_total = run, progress, work_total
        self.pending: list[_Pending] = []
        self.initial_loss = math.log(run.config.shape.vocab_size)

    def add(self, pending: _Pending) -> None:
        self.pending.append(pending)

    def due(self, work_step: int) -> bool:
        return len(self.pending) >= 8 or work_step % 100 == 0

    def read(self) -> Status:
        """Reads what is pending; the status after the first bad value, or "ok"."""
        pending, self.pending = self.pending, []
        values = torch.stack([p.loss for p in pending]).tolist() if pending else []
        for item, value in zip(pending, values, strict=True):
            if item.curve is not None:
                item.curve.append((item.step, value))
            if self.progress is not None:
                self.progress(item.work_step, self.work_total, value)
            if not math.isfinite(value):
                return "nan"
            diverge_at = self.run.config.diverge_factor * self.initial_loss
            if item.step > self.run.plan.warmup_steps and value > diverge_at:
                return "diverged"
        return "ok"


class _Stepper:
    """Takes optimizer steps along the schedule; counts the work and times it."""

    def __init__(
        self, run: _Run, progress: Progress | None, work_total: int, wall_start: float
    ) -> None:
        self.run, self.wall_start, self.work_total = run, wall_start, work_total
        self.reader = _LossReader(run, progress, work_total)
        self.work_done = 0
        self.position = 0  # the schedule's step reached
        # Steady-state speed excludes the first steps, which pay for compilation.
        self.timed_from = min(work_total - 1, 3)
        self.timed_start = self.train_start = time.perf_counter()
        # Evaluation and checkpoints are not training: their time is left out of the speed.
        self.untimed_s = 0.0
        self.untimed_before_timed_s = 0.0

    def untimed(self, action: Callable[[], T]) -> T:
        self._sync()
        start = time.perf_counter()
        try:
            return action()
        finally:
            self._sync()
            self.untimed_s += time.perf_counter() - start

    def _sync(self) -> None:
        if self.run.device.type == "cuda":
            torch.cuda.synchronize(self.run.device)

    def steps(
        self,
        start: int,
        stop: int,
        lr_of: Callable[[int], float],
        curve: list[tuple[int, float]] | None,
        marks: set[int],
    ) -> Status:
        """Steps start..stop-1 of the schedule (lr_of(step) each); the losses at `marks` go
        to `curve`. Stops early on nan, divergence or the time limit."""
        run = self.run
        for step in range(start, stop):
            if self.work_done == self.timed_from:
                self._sync()
                self.timed_start = time.perf_counter()
                self.untimed_before_timed_s = self.untimed_s
            lr = lr_of(step)
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
            self.work_done += 1
            self.position = step + 1
            keep = curve is not None and step + 1 in marks
            if keep or self.work_done % 100 == 0 or self.work_done == self.work_total:
                mean = loss_sum / run.plan.accum_steps
                self.reader.add(_Pending(step + 1, self.work_done, mean, curve if keep else None))
            if self.reader.due(self.work_done):
                status = self.reader.read()
                if status != "ok":
                    return status
            if (
                run.config.time_limit_s is not None
                and time.perf_counter() - self.wall_start > run.config.time_limit_s
            ):
                self.reader.read()
                return "timeout"
        # Every segment ends with a read: a branch is evaluated only after a clean cooldown.
        return self.reader.read()

    def outcome(self, status: Status, curve: list[tuple[int, float]]) -> _Outcome:
        run = self.run
        self._sync()
        end = time.perf_counter()
        train_time = end - self.train_start - self.untimed_s
        timed_time = end - self.timed_start - (self.untimed_s - self.untimed_before_timed_s)
        timed_steps = self.work_done - self.timed_from
        step_tokens = run.plan.batch_seqs * run.config.shape.context_tokens
        if timed_steps > 0 and timed_time > 0:
            tokens_per_s = timed_steps * step_tokens / timed_time
        else:
            tokens_per_s = self.work_done * step_tokens / max(train_time, 1e-9)
        return _Outcome(status, self.position, self.work_done, curve, train_time, tokens_per_s)


# Evaluates the model at the end of a schedule of `steps` steps (branch None: cosine) and
# records the point; its status: "ok", or "nan" for a non-finite loss.
PointSink = Callable[[int, Branch | None], Status]


def _run_cosine(run: _Run, stepper: _Stepper, on_point: PointSink) -> _Outcome:
    plan, curve = run.plan, list[tuple[int, float]]()
    marks = _curve_steps(plan.steps, run.config.loss_curve_points)
    cosine_lr = partial(lr_at, plan=plan, min_lr_ratio=run.config.min_lr_ratio)
    status = stepper.steps(0, plan.steps, cosine_lr, curve, marks)
    if status == "ok":
        status = stepper.untimed(partial(on_point, plan.steps, None))
    return stepper.outcome(status, curve)


def _run_wsd(run: _Run, stepper: _Stepper, on_point: PointSink) -> _Outcome:
    """The trunk up to each branch's start; each branch cools down from a checkpoint that the
    trunk then resumes from (the last branch needs none: the trunk ends there). The curve is
    the last point's path: the trunk, then the last cooldown."""
    plan, min_lr, curve = run.plan, run.config.min_lr_ratio, list[tuple[int, float]]()
    branches = run.branches
    marks = _curve_steps(branches[-1].end_step, run.config.loss_curve_points)
    position = 0
    for index, branch in enumerate(branches):
        last = index == len(branches) - 1
        trunk_lr = partial(wsd_lr_at, plan=plan, min_lr_ratio=min_lr, branch=None)
        status = stepper.steps(position, branch.start_step, trunk_lr, curve, marks)
        position = branch.start_step
        if status != "ok":
            return stepper.outcome(status, curve)
        take = partial(Checkpoint.take, run.model, run.optimizer, run.data_gen)
        saved = None if last else stepper.untimed(take)
        cooldown_lr = partial(wsd_lr_at, plan=plan, min_lr_ratio=min_lr, branch=branch)
        status = stepper.steps(
            branch.start_step, branch.end_step, cooldown_lr, curve if last else None, marks
        )
        if status == "ok":
            status = stepper.untimed(partial(on_point, branch.end_step, branch))
        if status != "ok":
            return stepper.outcome(status, curve)
        if saved is not None:
            stepper.untimed(partial(saved.restore, run.model, run.optimizer, run.data_gen))
    return stepper.outcome("ok", curve)


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

    branches = make_branches(config, plan) if config.schedule == "wsd" else ()
    run = _Run(model, step_loss, optimizer, data, data_gen, plan, branches, config, device, dtype)
    work_total = plan.steps
    if branches:
        work_total = branches[-1].start_step + sum(b.cooldown_steps for b in branches)
    stepper = _Stepper(run, progress, work_total, wall_start)
    bytes_per_token = get_tokenizer(config.corpus.tokenizer).bytes_per_token()
    step_tokens = plan.batch_seqs * shape.context_tokens
    points: list[TrainPoint] = []

    def on_point(steps: int, branch: Branch | None) -> Status:
        loss = evaluate(model, data, config, dtype)
        if not math.isfinite(loss):
            return "nan"
        tokens = steps * step_tokens
        points.append(
            TrainPoint(
                tokens=tokens,
                steps=steps,
                flops_6nd=flops_6nd(shape, tokens),
                flops_with_attention=flops_with_attention(shape, tokens),
                val_loss=loss,
                val_bits_per_byte=loss / math.log(2) / bytes_per_token,
                loss_provenance="end_of_schedule" if branch is None else "after_cooldown",
                cooldown_fraction=None if branch is None else branch.cooldown_fraction,
                cooldown_start_tokens=None if branch is None else branch.start_step * step_tokens,
            )
        )
        return "ok"

    outcome = (_run_wsd if branches else _run_cosine)(run, stepper, on_point)
    status, steps_done, curve = outcome.status, outcome.steps_done, outcome.curve
    train_time, tokens_per_s = outcome.train_time_s, outcome.tokens_per_s
    warnings: list[str] = []
    tokens = steps_done * step_tokens
    trained_tokens = outcome.work_steps * step_tokens
    val_loss = points[-1].val_loss if status == "ok" else None
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
        flops_6nd=flops_6nd(shape, tokens),
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
        schedule=config.schedule,
        points=points,
        trained_tokens=trained_tokens,
        trained_flops_6nd=flops_6nd(shape, trained_tokens),
    )
