"""Render the trainer bench's JSON outputs (info, throughput, sweep, fit) as markdown.

python3 bench/trainer_summary.py DIR   # writes DIR/summary.md
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def _fmt(value: Any, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _speed(row: dict[str, Any], key: str) -> str:
    """'1.23M tok/s (MFU 0.361)', or '-' where not measured."""
    tokens = row.get(f"{key}_tokens_per_s")
    if tokens is None:
        return "-"
    return f"{tokens / 1e6:.2f}M tok/s (MFU {_fmt(row.get(f'{key}_mfu'), '.3f')})"


def render(directory: Path) -> str:
    lines = ["# Trainer bench", ""]
    info_path = directory / "info.json"
    if info_path.exists():
        info = json.loads(info_path.read_text())
        lines += [
            f"- device: {info['device']}; torch {info['torch']}; python {info['python']}",
            f"- bf16 8192^3 matmul: {_fmt(info.get('matmul_bf16_tflops_8192'), '.0f')} TFLOP/s",
            f"- corpus: {info['corpus']['corpus_id']} hash {info['corpus']['corpus_hash'][:16]}, "
            f"{info['corpus']['train_tokens']} train tokens",
            f"- command: `{' '.join(info['argv'])}`",
            "",
        ]
    tp_path = directory / "throughput.json"
    if tp_path.exists():
        lines += [
            "## Throughput (MFU = tokens/s x flops_with_attention per token / peak)",
            "",
            "| case | non-emb params | vocab | shape L/d/h | batch | ref eager | ref compiled "
            "| trainer eager | trainer compiled | eager / ref eager | compiled / ref compiled |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in json.loads(tp_path.read_text()):
            if "error" in r:
                lines.append(f"| {r['case']} | failed: {r['error'].splitlines()[-1]} |")
                continue
            s = r["shape"]
            lines.append(
                f"| {r['case']} | {r['non_embedding_params']:,} | {s['vocab_size']:,} "
                f"| {s['n_layer']}/{s['d_model']}/{s['n_head']} "
                f"| {r['micro_batch_seqs']}x{r['accum_steps']}x{s['context_tokens']} "
                f"| {_speed(r, 'reference_eager')} | {_speed(r, 'reference_compiled')} "
                f"| {_speed(r, 'trainer_eager')} | {_speed(r, 'trainer_compiled')} "
                f"| {_fmt(r.get('eager_over_reference_eager'), '.2f')} "
                f"| {_fmt(r.get('compiled_over_reference_compiled'), '.2f')} |"
            )
        lines.append("")
        for r in json.loads(tp_path.read_text()):
            if "trainer_eager_without_rotary_tokens_per_s" in r:
                lines.append(
                    f"- {r['case']}: trainer eager without the rotary embedding "
                    f"{_speed(r, 'trainer_eager_without_rotary')} (diagnostic)"
                )
            if "trainer_eager_torch_rotary_tokens_per_s" in r:
                lines.append(
                    f"- {r['case']}: trainer eager with rotary in torch ops (no fused kernel) "
                    f"{_speed(r, 'trainer_eager_torch_rotary')} (diagnostic)"
                )
        lines.append("")
    sweep_path = directory / "sweep.jsonl"
    if sweep_path.exists():
        runs = [json.loads(x) for x in sweep_path.read_text().splitlines() if x.strip()]
        runs.sort(key=lambda r: (r["budget_flops"], r.get("total_params", 0)))
        lines += [
            "## IsoFLOP sweep (params = total, flops = 6ND with head)",
            "",
            "| budget | total params | tokens | val loss (nats/token) | bits/byte | epochs | "
            "tokens/s | status |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in runs:
            lines.append(
                f"| {r['budget_flops']:.0e} | {r.get('total_params', 0):,} "
                f"| {r.get('tokens', 0):,} "
                f"| {_fmt(r.get('val_loss'), '.4f')} | {_fmt(r.get('val_bits_per_byte'), '.4f')} "
                f"| {_fmt(r.get('epochs'), '.2f')} | {_fmt(r.get('tokens_per_s'), ',.0f')} "
                f"| {r['status']} |"
            )
        lines.append("")
    fit_path = directory / "isoflop_fit.json"
    if fit_path.exists():
        for name, fit in json.loads(fit_path.read_text()).items():
            lines += [
                f"## Fit ({name}): N_opt ~ C^a with a = {_fmt(fit.get('a'), '.3f')}, "
                f"all minima interior: {fit.get('all_interior')}",
                "",
            ]
            for m in fit["minima"]:
                lines.append(
                    f"- C={m['budget_flops']:.0e}: N_opt={_fmt(m.get('n_opt_params'), ',.0f')} "
                    f"interior={m['interior']} ({m['n_runs']} runs)"
                )
            lines.append("")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    target = Path(sys.argv[1])
    (target / "summary.md").write_text(render(target))
