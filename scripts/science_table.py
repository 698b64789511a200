"""The cross-source table of docs/science.md: the allocation exponent a (N_opt ~ C^a) of each
public IsoFLOP data set in examples/data, from an IsoFLOP fit (Approach 2) and a parametric
Chinchilla fit (Approach 3), each with a 95% bootstrap interval, and whether they agree.

    python scripts/science_table.py                  # the whole table (about a minute)
    python scripts/science_table.py --only EXPERIMENT

Data: examples/data/openathena_isoflops_extract.csv, every row (no QC filter), one row of the
table per `experiment` column value; C is the nominal budget of each IsoFLOP curve (runs grouped
by it). llama_3's `exp_loss` experiment is left out: it is exp() of the `raw_loss` one, not a
second measurement. "Agree" means the two 95% intervals overlap.
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from service.scaling import RunArrays, ScalingError, fit  # noqa: E402

DATA = ROOT / "examples" / "data" / "openathena_isoflops_extract.csv"
SKIP = {"llama_3__exp_loss": "exp() of llama_3__raw_loss"}
HEADER = (
    "| source | experiment | runs | budgets | a, IsoFLOP [95%] | a, parametric [95%] | agree |\n"
    "|---|---|---|---|---|---|---|"
)


def load(path: Path = DATA) -> dict[str, tuple[str, RunArrays]]:
    """Each experiment's (source, runs), in file order."""
    rows: dict[str, list[dict[str, str]]] = defaultdict(list)
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            rows[row["experiment"]].append(row)
    out: dict[str, tuple[str, RunArrays]] = {}
    for name, group in rows.items():
        budget = [float(r["budget"]) for r in group]
        runs = RunArrays(
            [float(r["params"]) for r in group],
            [float(r["tokens"]) for r in group],
            [float(r["loss"]) for r in group],
            budget=budget,
        )
        out[name] = (group[0]["source"], runs)
    return out


def _exponent(runs: RunArrays, method: str, bootstrap: int) -> tuple[float, float, float] | str:
    try:
        result = fit(runs, method=method, bootstrap=bootstrap, seed=0)
    except ScalingError as exc:
        return exc.code
    low, high = result.intervals(confidence=0.95)["a"]
    return result.estimates["a"], low, high


def _cell(value: tuple[float, float, float] | str) -> str:
    if isinstance(value, str):
        return f"no fit ({value})"
    a, low, high = value
    return f"{a:.3f} [{low:.3f}, {high:.3f}]"


def row(source: str, name: str, runs: RunArrays, bootstrap: int) -> str:
    """One line of the table."""
    iso = _exponent(runs, "isoflop", bootstrap)
    par = _exponent(runs, "parametric", bootstrap)
    if isinstance(iso, str) or isinstance(par, str):
        agree = "-"
    else:
        agree = "yes" if iso[1] <= par[2] and par[1] <= iso[2] else "**no**"
    budgets = len(set((runs.budget if runs.budget is not None else runs.flops).tolist()))
    return (
        f"| {source} | {name} | {len(runs)} | {budgets} | {_cell(iso)} | {_cell(par)} | {agree} |"
    )


def table(*, only: str | None = None, bootstrap: int = 100) -> str:
    lines = [HEADER]
    for name, (source, runs) in load().items():
        if name in SKIP or (only is not None and name != only):
            continue
        lines.append(row(source, name, runs, bootstrap))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="One experiment (the `experiment` column).")
    parser.add_argument("--bootstrap", type=int, default=100, help="Resamples per fit.")
    args = parser.parse_args()
    print(table(only=args.only, bootstrap=args.bootstrap))


if __name__ == "__main__":
    main()
