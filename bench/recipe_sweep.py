"""The sweep behind the trainer's small-scale recipe (service/trainer/recipe.py, SMALL_SCALE).

Byte-level GPTs of 7k to 250k total parameters on the Python standard library, context 64, one
CPU thread per run, two runs at a time. Three parts, each printed as a table:

  lr       peak learning rate x model size x tokens, at the recipe's step rule;
  steps    optimizer steps (batch = tokens / steps) x size, at each size's best lr;
  head     head size (16, 32, 64) and warmup fraction at one size;
  recipe   the resulting defaults (no lr, batch or warmup given; the family's head size), with
           the default lr halved and doubled: the check that the rules sit at the optimum and
           that at equal tokens a bigger model is better.

Usage: PYTHONPATH=. python bench/recipe_sweep.py [--quick] [--parts lr,steps,head,recipe]
[--out bench/results/recipe_sweep]. Writes <out>.json (every run; parts not rerun are kept
from an earlier file) and <out>.md (the tables). --quick trains a quarter of the tokens.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CONTEXT = 64
SIZES = [(1, 16), (1, 32), (1, 64), (2, 96)]  # (n_layer, d_model)
LRS = [1e-3, 2e-3, 4e-3, 8e-3, 1.6e-2, 3.2e-2]
STEPS = [64, 128, 256, 512, 1024]


# Part "recipe": lr = factor x LR_BASE / d_model; the factor that equals the recipe's constant
# runs with no lr given (the default path).
LR_BASE = 0.25
LR_FACTORS = [0.5, 1.0, 2.0, 4.0]


@dataclass(frozen=True)
class Point:
    """One run; for part "recipe", lr is a factor on LR_BASE / d_model and steps is unused."""

    part: str
    n_layer: int
    d_model: int
    head_dim: int
    tokens: int
    lr: float
    steps: int
    warmup_frac: float
    seed: int = 0


def train_point(point: Point) -> dict[str, Any]:
    from service.trainer import ModelShape, TrainConfig, train
    from service.trainer.recipe import SMALL_LR_TIMES_WIDTH

    shape = ModelShape(
        point.n_layer, point.d_model, point.d_model // point.head_dim, CONTEXT, vocab_size=256
    )
    started = time.perf_counter()
    if point.part == "recipe":
        config = TrainConfig(
            shape=shape,
            tokens=point.tokens,
            lr=None
            if point.lr * LR_BASE == SMALL_LR_TIMES_WIDTH
            else point.lr * LR_BASE / shape.d_model,
            seed=point.seed,
            device="cpu",
            threads=1,
        )
    else:
        config = TrainConfig(
            shape=shape,
            tokens=point.tokens,
            batch_tokens=max(CONTEXT, round(point.tokens / point.steps / CONTEXT) * CONTEXT),
            lr=point.lr,
            warmup_frac=point.warmup_frac,
            seed=point.seed,
            device="cpu",
            threads=1,
        )
    result = train(config)
    return {
        **point.__dict__,
        "total_params": result.total_params,
        "non_embedding_params": result.non_embedding_params,
        "batch_tokens": result.batch_tokens,
        "trained_tokens": result.tokens,
        "trained_steps": result.steps,
        "peak_lr": result.peak_lr,
        "warmup_steps": result.warmup_steps,
        "status": result.status,
        "val_loss": result.val_loss,
        "wall_s": round(time.perf_counter() - started, 2),
    }


def run_all(points: list[Point], workers: int) -> list[dict[str, Any]]:
    with ProcessPoolExecutor(workers) as pool:
        rows = list(pool.map(train_point, points))
    for row in rows:
        print(json.dumps(row), flush=True)
    return rows


def head_dim_for(d_model: int) -> int:
    return next(h for h in (64, 32, 16) if d_model % h == 0)


def best_lr(rows: list[dict[str, Any]], n_layer: int, d_model: int) -> float:
    mine = [
        r
        for r in rows
        if (r["n_layer"], r["d_model"]) == (n_layer, d_model) and r["val_loss"] is not None
    ]
    # Sum of log-losses over token counts: one lr per size that is good at every length.
    score: dict[float, float] = defaultdict(float)
    for r in mine:
        score[r["lr"]] += math.log(r["val_loss"])
    return min(score, key=lambda lr: score[lr])


def table(rows: list[dict[str, Any]], key: str, columns: list[Any]) -> list[str]:
    header = (
        "| size (total params) | tokens | " + " | ".join(f"{key}={c:g}" for c in columns) + " |"
    )
    lines = [header, "|" + "---|" * (len(columns) + 2)]
    groups: dict[tuple[int, int], dict[Any, float | None]] = defaultdict(dict)
    for r in rows:
        groups[(r["total_params"], r["tokens"])][r[key]] = r["val_loss"]
    for (params, tokens), cells in sorted(groups.items()):
        values = [cells.get(c) for c in columns]
        finite = [v for v in values if v is not None]
        best = min(finite) if finite else None
        shown = [
            "-" if v is None else (f"**{v:.3f}**" if v == best else f"{v:.3f}") for v in values
        ]
        lines.append(f"| {params:,} | {tokens:.3g} | " + " | ".join(shown) + " |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a quarter of the tokens")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--parts", default="lr,steps,head,recipe")
    parser.add_argument("--out", default="bench/results/recipe_sweep")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    scale = 0.25 if args.quick else 1.0
    token_counts = [int(2.5e5 * scale), int(2e6 * scale)]
    mid = int(1e6 * scale)
    out = Path(args.out)
    rows: dict[str, list[dict[str, Any]]] = {}
    if out.with_suffix(".json").exists():
        rows = json.loads(out.with_suffix(".json").read_text())
    started = time.perf_counter()

    if "lr" in parts:
        rows["lr"] = run_all(
            [
                Point("lr", n, d, head_dim_for(d), t, lr, 256, 0.02)
                for (n, d) in SIZES
                for t in token_counts
                for lr in LRS
            ],
            args.workers,
        )
    best = {(n, d): best_lr(rows["lr"], n, d) for (n, d) in SIZES}
    if "steps" in parts:
        rows["steps"] = run_all(
            [
                Point("steps", n, d, head_dim_for(d), mid, best[(n, d)], s, 0.02)
                for (n, d) in SIZES
                for s in STEPS
            ],
            args.workers,
        )
    n, d = SIZES[2]
    if "head" in parts:
        rows["head"] = run_all(
            [
                Point("head", n, d, h, mid, best[(n, d)], 256, w)
                for h in (16, 32, 64)
                for w in (0.02, 0.1)
            ],
            args.workers,
        )
    if "recipe" in parts:
        from service.scaling.shape_family import head_dim

        rows["recipe"] = run_all(
            [
                Point("recipe", n_, d_, head_dim(d_), mid, factor, 0, 0.02)
                for (n_, d_) in SIZES
                for factor in LR_FACTORS
            ],
            args.workers,
        )

    lines = [
        "# Small-scale recipe sweep",
        "",
        f"`PYTHONPATH=. python bench/recipe_sweep.py{' --quick' if args.quick else ''}`: "
        f"byte-level GPTs, context {CONTEXT}, CPU, 1 thread per run, {args.workers} at a time "
        f"(this run: parts {args.parts}, {time.perf_counter() - started:.0f} s). Cells: "
        "validation loss (nats/byte) on the same 262,144 held-out bytes; bold is the row's best.",
        "",
        "## Peak learning rate (256 optimizer steps, warmup 2%, heads of 64/32/16)",
        "",
        *table(rows["lr"], "lr", LRS),
        "",
        "Best lr per size (summed log-loss over both lengths): "
        + ", ".join(f"L{n_} d{d_}: {lr:g}" for (n_, d_), lr in best.items()),
        "",
    ]
    if "steps" in rows:
        lines += [
            f"## Optimizer steps at {mid:.3g} tokens (batch = tokens / steps), best lr",
            "",
            *table(rows["steps"], "steps", STEPS),
            "",
        ]
    if "head" in rows:
        lines += [
            f"## Head size x warmup fraction, L{n} d{d}, {mid:.3g} tokens, 256 steps",
            "",
            "| head_dim | warmup 0.02 | warmup 0.1 |",
            "|---|---|---|",
        ]
        for h in (16, 32, 64):
            cells = {r["warmup_frac"]: r["val_loss"] for r in rows["head"] if r["head_dim"] == h}
            lines.append(f"| {h} | {cells[0.02]:.3f} | {cells[0.1]:.3f} |")
        lines.append("")
    if "recipe" in rows:
        from service.trainer.recipe import SMALL_LR_TIMES_WIDTH

        default = SMALL_LR_TIMES_WIDTH / LR_BASE
        lines += [
            f"## The recipe's defaults at {mid:.3g} tokens (lr = factor x {LR_BASE} / d_model; "
            f"factor {default:g} is the recipe's own lr, run with no lr given)",
            "",
            *table(rows["recipe"], "lr", LR_FACTORS),
            "",
            f"Steps and lr of the default column (lr={default:g}): "
            + ", ".join(
                f"{r['total_params']:,}: {r['trained_steps']} steps x {r['batch_tokens']} tokens, "
                f"lr {r['peak_lr']:.3g}, warmup {r['warmup_steps']}"
                for r in rows["recipe"]
                if r["lr"] == default
            ),
            "",
        ]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(rows, indent=1))
    out.with_suffix(".md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
