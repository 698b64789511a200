"""The WSD trainer on CUDA, compiled: branching leaves the trunk alone there too.

On CPU the tests show it bit for bit (tests/trainer/test_trainer_wsd.py). On a GPU, fused AdamW's
step tensor, the CUDA generator state and the compiled model all pass through the host-side
checkpoint, and kernels need not be deterministic; so the check is against the GPU's own
run-to-run noise: the last branch of a run with a branch at D/2 against the same run without it,
beside two runs without it.

    python3 bench/trainer_wsd_gpu.py --out DIR   # on a CUDA machine
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from service.trainer.config import CorpusSpec, ModelShape, TrainConfig
from service.trainer.loop import train


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--tokens", type=int, default=40 * 32 * 1024)
    p.add_argument("--cache-dir", default="/tmp/scaling-corpus")
    p.add_argument("--dry-run", action="store_true", help="a tiny model on CPU: plumbing only")
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    base = TrainConfig(
        shape=ModelShape(8, 512, 8, 1024, 256),
        tokens=args.tokens,
        batch_tokens=32 * 1024,
        micro_batch_seqs=32,
        device="cuda",
        compile="on",
        corpus=CorpusSpec(("stdlib",), val_tokens=500_000),
        cache_dir=args.cache_dir,
        seed=0,
        schedule="wsd",
    )
    if args.dry_run:
        args.tokens = 40 * 8 * 64
        base = replace(
            base,
            shape=ModelShape(1, 32, 2, 64, 256),
            tokens=args.tokens,
            batch_tokens=8 * 64,
            micro_batch_seqs=8,
            device="cpu",
            compile="off",
            threads=1,
            eval_tokens=4096,
        )
    half = args.tokens // 2
    runs = {
        "alone_1": replace(base, branch_tokens=(args.tokens,)),
        "alone_2": replace(base, branch_tokens=(args.tokens,)),
        "branched": replace(base, branch_tokens=(half, args.tokens)),
    }
    out: dict[str, object] = {}
    for name, config in runs.items():
        t0 = time.perf_counter()
        result = train(config)
        out[name] = {
            "status": result.status,
            "wall_s": time.perf_counter() - t0,
            "points": [
                {"tokens": q.tokens, "val_loss": q.val_loss, "flops_6nd": q.flops_6nd}
                for q in result.points
            ],
            "trained_flops_6nd": result.trained_flops_6nd,
            "last_train_loss": result.train_loss_curve[-1] if result.train_loss_curve else None,
        }
        print(name, json.dumps(out[name]), flush=True)

    def last(name: str) -> float:
        entry = out[name]
        assert isinstance(entry, dict)
        return float(entry["points"][-1]["val_loss"])

    out["run_to_run_abs_diff"] = abs(last("alone_1") - last("alone_2"))
    out["branched_vs_alone_abs_diff"] = abs(last("branched") - last("alone_1"))
    (args.out / "wsd_gpu.json").write_text(json.dumps(out, indent=1))
    print(json.dumps({k: out[k] for k in ("run_to_run_abs_diff", "branched_vs_alone_abs_diff")}))


if __name__ == "__main__":
    main()
