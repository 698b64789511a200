"""One prepared GPU script: trainer throughput/MFU per size against a plain model timed in the
same run, then an IsoFLOP sweep and its fit. Results go to --out as they arrive.

    python3 bench/trainer_gpu.py --out DIR            # on an H100/H200
    python3 bench/trainer_gpu.py --out DIR --dry-run  # tiny, on CPU
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import sys
import time
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch
from isoflop_fit import fit_isoflops
from reference_gpt import time_reference
from trainer_summary import render

from service.trainer import model as model_module
from service.trainer import rotary_fused
from service.trainer.config import (
    CorpusSpec,
    ModelShape,
    TrainConfig,
    shape_for_non_embedding_params,
)
from service.trainer.corpus import load_corpus
from service.trainer.counts import flops_with_attention, param_counts
from service.trainer.hardware import peak_flops
from service.trainer.loop import train
from service.trainer.rotary import rotary_tables, rotate_with_torch_ops


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def matmul_tflops(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    a = torch.randn(8192, 8192, device=device, dtype=torch.bfloat16)
    b = torch.randn(8192, 8192, device=device, dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(10):
        a @ b
    torch.cuda.synchronize()
    return 10 * 2 * 8192**3 / (time.perf_counter() - start) / 1e12


def check_fused_rotary(device: torch.device) -> dict[str, Any]:
    """The fused kernel against the torch ops, forward and backward, on the trainer's layout
    (q and k of a (batch, time, 3, heads, head_dim) projection). Raises when they disagree."""
    if device.type != "cuda" or rotary_fused.fused_rotary is None:
        return {"checked": False, "why": "no CUDA device or no Triton"}
    out: dict[str, Any] = {"checked": True}
    for dtype, tol in ((torch.float32, 1e-5), (torch.bfloat16, 2e-2)):
        cos, sin = (z.to(device, dtype) for z in rotary_tables(64, 1024))
        qkv = torch.randn(4, 1024, 3, 8, 64, device=device, dtype=dtype, requires_grad=True)
        grad = torch.randn(4, 1024, 2, 8, 64, device=device, dtype=dtype)
        results = []
        for rotate in (rotary_fused.fused_rotary, rotate_with_torch_ops):
            qk = qkv.split((2, 1), dim=2)[0]
            y = rotate(qk, cos, sin)
            (g,) = torch.autograd.grad(y, qkv, grad)
            results.append((y.float(), g.float()))
        (y1, g1), (y2, g2) = results
        err_y = float((y1 - y2).abs().max() / y2.abs().max())
        err_g = float((g1 - g2).abs().max() / g2.abs().max())
        out[str(dtype)] = {"forward_rel_err": err_y, "backward_rel_err": err_g, "tol": tol}
        if not (err_y <= tol and err_g <= tol):
            raise AssertionError(f"fused rotary disagrees with torch ops: {out}")
    return out


def _time_trainer(
    args: argparse.Namespace, corpus: CorpusSpec, shape: ModelShape, case: dict[str, Any], mode: str
) -> dict[str, Any]:
    micro, accum = case["micro"], case["accum"]
    batch_tokens = micro * accum * shape.context_tokens
    config = TrainConfig(
        shape=shape,
        tokens=(args.steps + 3) * batch_tokens,
        batch_tokens=batch_tokens,
        micro_batch_seqs=micro,
        lr=3e-4,
        device=args.device,
        compile=mode,  # type: ignore[arg-type]
        corpus=corpus,
        cache_dir=args.cache_dir,
        eval_tokens=shape.context_tokens * 8,
        eval_batch_seqs=8,
        seed=0,
    )
    t0 = time.perf_counter()
    result = train(config)
    key = "trainer_compiled" if mode == "on" else "trainer_eager"
    return {
        f"{key}_tokens_per_s": result.tokens_per_s,
        f"{key}_mfu": result.mfu,
        f"{key}_wall_s": time.perf_counter() - t0,
        f"{key}_peak_memory_bytes": result.peak_memory_bytes,
    }


def throughput_case(
    args: argparse.Namespace, corpus: CorpusSpec, case: dict[str, Any]
) -> dict[str, Any]:
    """One shape and batch: the plain reference (eager, and compiled where asked) and the
    trainer (eager and compiled), timed one after the other on the same card."""
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    peak = peak_flops(name, "bfloat16")
    if "shape" in case:  # (n_layer, d_model, n_head): a shape off the family's ladder
        shape = ModelShape(*case["shape"], args.context, case["vocab"])
    else:
        shape = shape_for_non_embedding_params(case["non_embedding"], args.context, case["vocab"])
    micro, accum = case["micro"], case["accum"]
    per_token = flops_with_attention(shape, 1)
    row: dict[str, Any] = {"case": case["label"], "shape": shape.__dict__}
    row.update(param_counts(shape).__dict__)
    row.update(micro_batch_seqs=micro, accum_steps=accum)
    row["batch_tokens"] = micro * accum * shape.context_tokens
    ref_modes: tuple[bool, ...] = (False, True) if case.get("reference", True) else ()
    if "on" not in case.get("modes", ("on",)):
        ref_modes = ref_modes[:1]
    for compiled in ref_modes:
        ref = time_reference(
            shape.vocab_size,
            shape.context_tokens,
            shape.n_layer,
            shape.d_model,
            shape.n_head,
            micro,
            accum,
            args.steps,
            device,
            compile=compiled,
        )
        key = "reference_compiled" if compiled else "reference_eager"
        row[f"{key}_tokens_per_s"] = ref
        row[f"{key}_mfu"] = ref * per_token / peak if peak else None
    for mode in case.get("modes", ("off", "on")):
        row.update(_time_trainer(args, corpus, shape, case, mode))
    if case.get("without_rotary"):
        # Diagnostic: what the rotary embedding costs the eager step.
        saved = model_module.apply_rotary
        model_module.apply_rotary = lambda x, cos, sin: x
        try:
            timed = _time_trainer(args, corpus, shape, case, "off")
        finally:
            model_module.apply_rotary = saved
        row["trainer_eager_without_rotary_tokens_per_s"] = timed["trainer_eager_tokens_per_s"]
        row["trainer_eager_without_rotary_mfu"] = timed["trainer_eager_mfu"]
        # Diagnostic: eager with rotary in torch ops (before the fused kernel).
        saved_fused = rotary_fused.fused_rotary
        rotary_fused.fused_rotary = None
        try:
            timed = _time_trainer(args, corpus, shape, case, "off")
        finally:
            rotary_fused.fused_rotary = saved_fused
        row["trainer_eager_torch_rotary_tokens_per_s"] = timed["trainer_eager_tokens_per_s"]
        row["trainer_eager_torch_rotary_mfu"] = timed["trainer_eager_mfu"]
    if ref_modes and "trainer_eager_tokens_per_s" in row:
        row["eager_over_reference_eager"] = (
            row["trainer_eager_tokens_per_s"] / row["reference_eager_tokens_per_s"]
        )
    if ref_modes and "trainer_compiled_tokens_per_s" in row:
        row["compiled_over_reference_compiled"] = (
            row["trainer_compiled_tokens_per_s"] / row["reference_compiled_tokens_per_s"]
        )
    return row


def throughput(args: argparse.Namespace, corpus: CorpusSpec, out: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for case in args.throughput_cases:
        try:
            row = throughput_case(args, corpus, case)
        except Exception:
            row = {"case": case["label"], "error": traceback.format_exc()}
            log(f"throughput {case['label']} failed: {row['error'][-1500:]}")
        else:
            log(f"throughput {case['label']}: " + json.dumps(row))
        rows.append(row)
        (out / "throughput.json").write_text(json.dumps(rows, indent=1))
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    return rows


def sweep_jobs(args: argparse.Namespace, corpus: CorpusSpec) -> list[dict[str, Any]]:
    """Per budget, sizes spaced by args.size_ratio around N = sqrt(C / (6 r)), where D = r N
    (r = args.tokens_per_param; Chinchilla's 20 is for BPE tokens, bytes want more)."""
    jobs = []
    half = (args.sizes - 1) / 2
    for budget in args.budgets:
        seen: set[ModelShape] = set()
        n_center = math.sqrt(budget / (6 * args.tokens_per_param))
        for i in range(args.sizes):
            n_total = n_center * args.size_ratio ** (i - half)
            # Solve for the non-embedding target: total = non_embedding + 256 * d.
            shape = shape_for_non_embedding_params(max(n_total * 0.8, 1e3), args.sweep_context)
            for _ in range(3):
                emb = shape.vocab_size * shape.d_model
                shape = shape_for_non_embedding_params(max(n_total - emb, 1e3), args.sweep_context)
            if shape in seen:
                continue
            seen.add(shape)
            config = TrainConfig(
                shape=shape,
                target_flops=budget,
                device=args.device,
                compile="off",
                corpus=corpus,
                cache_dir=args.cache_dir,
                eval_tokens=args.eval_tokens,
                eval_batch_seqs=64,
                seed=0,
                threads=args.sweep_threads,
                micro_batch_seqs=args.sweep_micro_seqs,
            )
            jobs.append({"budget_flops": budget, "config": config.to_dict()})
    return jobs


def run_job(job: dict[str, Any], deadline: float) -> dict[str, Any]:
    config = TrainConfig.from_dict(job["config"])
    config = replace(config, time_limit_s=max(1.0, deadline - time.time()))
    try:
        result = train(config).to_dict()
    except Exception:
        return {
            "budget_flops": job["budget_flops"],
            "status": "error",
            "error": traceback.format_exc(),
        }
    result["budget_flops"] = job["budget_flops"]
    return result


def sweep(args: argparse.Namespace, corpus: CorpusSpec, out: Path, deadline: float) -> None:
    jobs = sweep_jobs(args, corpus)
    log(f"sweep: {len(jobs)} runs, {args.workers} at once")
    results: list[dict[str, Any]] = []
    ctx = mp.get_context("spawn")
    with (
        ProcessPoolExecutor(args.workers, mp_context=ctx) as pool,
        (out / "sweep.jsonl").open("w") as f,
    ):
        futures = [pool.submit(run_job, job, deadline) for job in jobs]
        errors = 0
        for fut in as_completed(futures):
            r = fut.result()
            r.pop("config", None)
            results.append(r)
            f.write(json.dumps(r) + "\n")
            f.flush()
            if r["status"] == "error":
                log(f"run failed: {r['error'][-1500:]}")
                errors += 1
                if errors >= 3 and errors == len(results):
                    log("first runs all failed: abandoning the sweep")
                    for other in futures:
                        other.cancel()
                    break
            log(
                f"C={r['budget_flops']:.0e} N={r.get('total_params', 0):,} {r['status']} "
                f"val={r.get('val_loss')} tok/s={r.get('tokens_per_s', 0):,.0f} "
                f"epochs={r.get('epochs', 0):.2f} wall={r.get('wall_time_s', 0):.1f}s"
            )
            write_fits(results, out)
    fits = write_fits(results, out)
    for name, fit in fits.items():
        log(f"isoflop fit ({name}): a={fit['a']} all_interior={fit.get('all_interior')}")


def write_fits(results: list[dict[str, Any]], out: Path) -> dict[str, Any]:
    fits = {"all_sizes": fit_isoflops(results), "best_and_neighbours": fit_isoflops(results, 3)}
    (out / "isoflop_fit.json").write_text(json.dumps(fits, indent=1))
    return fits


def apply_preset(args: argparse.Namespace) -> CorpusSpec:
    """Sizes, budgets and corpus for the chosen preset; returns the corpus."""
    if args.dry_run:
        args.device = "cpu"
        args.context, args.steps = 64, 3
        args.throughput_cases = [
            {
                "key": "30k",
                "label": "30k",
                "non_embedding": 3e4,
                "vocab": 256,
                "micro": 4,
                "accum": 2,
                "without_rotary": True,
            },
            {
                "label": "30k, 50k vocab",
                "non_embedding": 3e4,
                "vocab": 50304,
                "micro": 2,
                "accum": 2,
            },
        ]
        args.budgets, args.sizes, args.size_ratio = [1e11, 2e11], 3, 3.0
        args.tokens_per_param = 20.0
        args.sweep_context, args.eval_tokens, args.workers = 64, 4096, 2
        args.sweep_micro_seqs, args.sweep_threads = None, 1
        return CorpusSpec(("stdlib",), max_bytes=2_000_000, val_tokens=50_000)
    if args.cpu_sweep:
        args.device = "cpu"
        args.context, args.steps = 64, 20
        args.throughput_cases = [
            {"label": "50k", "non_embedding": 5e4, "vocab": 256, "micro": 16, "accum": 1}
        ]
        args.budgets, args.sizes, args.size_ratio = [1e11, 3e11, 1e12], 5, 2.0
        args.tokens_per_param = args.tokens_per_param or 20.0
        args.sweep_context, args.eval_tokens, args.workers = 64, 262_144, 2
        args.sweep_micro_seqs, args.sweep_threads = None, 1
        return CorpusSpec(("stdlib",), val_tokens=1_000_000)
    args.device = "cuda"
    args.context, args.steps = 1024, 20
    args.throughput_cases = [
        # The shape the numbers were taken at: 25.2M non-embedding, heads of 64.
        {
            "key": "25m",
            "label": "25M (8x512, heads of 64), one micro-batch",
            "shape": (8, 512, 8),
            "vocab": 256,
            "micro": 96,
            "accum": 1,
            "without_rotary": True,
        },
        {
            "key": "25m-accum",
            "label": "25M (8x512, heads of 64), 3 micro-batches",
            "shape": (8, 512, 8),
            "vocab": 256,
            "micro": 32,
            "accum": 3,
        },
        # The family's ladder shape nearest 25M: 8x480 takes heads of 32.
        {
            "key": "22m-ladder",
            "label": "22M ladder (8x480, heads of 32), one micro-batch",
            "non_embedding": 25e6,
            "vocab": 256,
            "micro": 96,
            "accum": 1,
        },
        {
            "key": "85m",
            "label": "85M (12x768)",
            "non_embedding": 85e6,
            "vocab": 256,
            "micro": 32,
            "accum": 3,
        },
        {
            "key": "50k-vocab",
            "label": "25M, 50k vocab",
            "non_embedding": 25e6,
            "vocab": 50304,
            "micro": 16,
            "accum": 6,
        },
    ]
    # Seven sizes centred on D = 60 N: the CPU sweep put byte-level optima at D/N ~ 100-250.
    args.budgets, args.sizes, args.size_ratio = [1e13, 3e13, 1e14, 3e14, 1e15, 3e15], 7, 1.6
    args.tokens_per_param = args.tokens_per_param or 60.0
    args.sweep_context, args.eval_tokens, args.workers = 256, 1_048_576, 6
    args.sweep_micro_seqs, args.sweep_threads = None, 2
    return CorpusSpec(("stdlib", "site"), max_bytes=200_000_000, val_tokens=2_000_000)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--dry-run", action="store_true", help="tiny plumbing check on CPU")
    p.add_argument("--cpu-sweep", action="store_true", help="a miniature sweep on CPU")
    p.add_argument("--tokens-per-param", type=float, default=None, help="grid centre D/N")
    p.add_argument("--sizes", dest="sizes_override", type=int, default=None)
    p.add_argument("--size-ratio", dest="size_ratio_override", type=float, default=None)
    p.add_argument(
        "--budgets", dest="budgets_override", type=float, nargs="*", help="replace the budgets"
    )
    p.add_argument("--skip-throughput", action="store_true")
    p.add_argument("--cases", nargs="*", help="throughput cases to run, by key (default: all)")
    p.add_argument("--eager-only", action="store_true", help="time no compiled model")
    p.add_argument("--skip-sweep", action="store_true")
    p.add_argument("--deadline-s", type=float, default=370.0)
    p.add_argument("--sweep-s", type=float, default=250.0, help="sweep deadline from start")
    p.add_argument("--cache-dir", default="/tmp/scaling-corpus")
    args = p.parse_args()
    start = time.time()
    deadline = start + args.deadline_s
    corpus = apply_preset(args)
    if args.budgets_override:
        args.budgets = args.budgets_override
    args.sizes = args.sizes_override or args.sizes
    args.size_ratio = args.size_ratio_override or args.size_ratio
    if args.cases:
        args.throughput_cases = [c for c in args.throughput_cases if c.get("key") in args.cases]
    if args.eager_only:
        args.throughput_cases = [{**c, "modes": ("off",)} for c in args.throughput_cases]
    args.out.mkdir(parents=True, exist_ok=True)
    device = torch.device(args.device)
    info: dict[str, Any] = {
        "argv": sys.argv,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "python": sys.version.split()[0],
        "matmul_bf16_tflops_8192": matmul_tflops(device),
    }
    info["fused_rotary_check"] = check_fused_rotary(device)
    log(f"fused rotary check: {info['fused_rotary_check']}")
    built = load_corpus(corpus, args.cache_dir)
    info["corpus"] = {k: str(v) for k, v in built.__dict__.items()}
    info["corpus_build_s"] = time.time() - start
    (args.out / "info.json").write_text(json.dumps(info, indent=1))
    log(f"info: {info}")
    # The sweep goes first under its own deadline so the throughput phase always gets its turn.
    if not args.skip_sweep:
        sweep(args, corpus, args.out, min(deadline, start + args.sweep_s))
    if not args.skip_throughput:
        throughput(args, corpus, args.out)
    (args.out / "summary.md").write_text(render(args.out))
    log(f"done in {time.time() - start:.0f}s")


if __name__ == "__main__":
    main()
