"""Training runs from CSV text: a pure function from text to arrays plus per-row errors.

Columns are read by service.io.table (the server's import reads them the same way): params,
tokens or flops, loss, and optionally unique_tokens, budget, run_key, outlier/flag, experiment,
under any of the accepted names (``service.io.table.ACCEPTED``) or an explicit mapping. Tokens
missing but FLOPs present: D = C / (6 N) (Epoch's convention). Nothing is dropped silently: bad
rows come back in ``errors``, rows removed by a filter are counted in ``filtered``. A
``loss_provenance`` column (end_of_schedule when absent or empty) marks losses read mid-schedule,
left out by default; rows sharing a ``trunk_key`` are resampled together by the bootstrap.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from service.io.table import TableError, read_table
from service.scaling.runs import RunArrays

_NUMERIC = ("params", "tokens", "flops", "loss", "budget", "unique_tokens")
_TRUE = {"true", "1", "yes", "y", "t"}
_PROVENANCES = ("end_of_schedule", "after_cooldown", "mid_schedule")
_MID_SCHEDULE = (
    "loss read mid-schedule (loss_provenance mid_schedule): not a valid scaling-law point; "
    "--include-mid-schedule fits it anyway"
)


@dataclass(frozen=True)
class RowError:
    line: int  # 1-based line in the text, header is line 1
    column: str
    message: str


@dataclass
class ParsedRuns:
    columns: dict[str, str]  # canonical name -> header found (run ids: "run_key")
    values: dict[str, list[float]] = field(default_factory=dict)
    run_id: list[str] = field(default_factory=list)
    flags: list[bool] = field(default_factory=list)
    experiment: list[str] = field(default_factory=list)
    trunk: list[str] = field(default_factory=list)  # "" for a row without a trunk_key
    lines: list[int] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    filtered: list[tuple[int, str]] = field(default_factory=list)  # (line, reason)

    def __len__(self) -> int:
        return len(self.lines)

    def experiments(self) -> list[str]:
        return sorted(set(self.experiment))

    def to_runs(self, experiment: str | None = None) -> RunArrays:
        idx = np.arange(len(self))
        if experiment is not None:
            idx = np.flatnonzero(np.array(self.experiment) == experiment)

        def col(name: str) -> NDArray[np.float64] | None:
            return (
                np.asarray(self.values[name], dtype=np.float64)[idx]
                if name in self.values
                else None
            )

        def req(name: str) -> NDArray[np.float64]:
            return np.asarray(self.values[name], dtype=np.float64)[idx]

        run_id = None
        if self.run_id:
            _, inv = np.unique(np.asarray(self.run_id)[idx], return_inverse=True)
            run_id = inv
        groups = None
        if any(self.trunk):
            # A row without a trunk is a trunk of its own: its line number keys it.
            keys = [
                t if t else f"<no trunk: line {line}>"
                for t, line in zip(self.trunk, self.lines, strict=True)
            ]
            _, groups = np.unique(np.asarray(keys)[idx], return_inverse=True)
        return RunArrays.from_arrays(
            params=req("params"),
            tokens=req("tokens"),
            loss=req("loss"),
            flops=col("flops"),
            unique_tokens=col("unique_tokens"),
            budget=col("budget"),
            run_id=run_id,
            groups=groups,
            flags=np.asarray(self.flags)[idx] if self.flags else None,
        )


class CsvFormatError(TableError):
    """The header lacks a required column."""


def parse_runs_csv(
    text: str,
    max_loss: float | None = None,
    mapping: Mapping[str, str] | None = None,
    *,
    include_mid_schedule: bool = False,
) -> ParsedRuns:
    """Parse CSV ``text``; rows with loss >= ``max_loss``, and rows whose loss_provenance is
    mid_schedule (unless ``include_mid_schedule``), are filtered (and reported). Rows sharing a
    trunk_key are one bootstrap group."""
    try:
        table = read_table(text, "csv", mapping)
    except TableError as exc:
        raise CsvFormatError(str(exc)) from exc
    found = table.columns
    out = ParsedRuns(columns=dict(found))
    for unreadable in table.errors:
        out.errors.append(RowError(unreadable.line, "", unreadable.reason))
    numeric = [c for c in _NUMERIC if c in found]
    for c in numeric:
        out.values[c] = []
    if "tokens" not in found:
        out.values["tokens"] = []
    for row in table.rows:
        parsed: dict[str, float] = {}
        bad = False
        for c in numeric:
            cell = row.values[c]
            try:
                v = float(cell)
            except ValueError:
                out.errors.append(RowError(row.line, found[c], f"not a number: {cell!r}"))
                bad = True
                continue
            if not np.isfinite(v) or v <= 0:
                out.errors.append(RowError(row.line, found[c], f"must be finite and > 0: {cell}"))
                bad = True
            parsed[c] = v
        provenance = row.values.get("loss_provenance", "") or "end_of_schedule"
        if provenance not in _PROVENANCES:
            out.errors.append(
                RowError(
                    row.line,
                    found["loss_provenance"],
                    f"not a loss provenance: {provenance!r} (one of {', '.join(_PROVENANCES)})",
                )
            )
            bad = True
        if bad:
            continue
        if provenance == "mid_schedule" and not include_mid_schedule:
            out.filtered.append((row.line, _MID_SCHEDULE))
            continue
        if max_loss is not None and parsed["loss"] >= max_loss:
            out.filtered.append((row.line, f"loss {parsed['loss']:.6g} >= max_loss {max_loss:g}"))
            continue
        if "tokens" not in found:
            parsed["tokens"] = parsed["flops"] / (6.0 * parsed["params"])
        for c, v in parsed.items():
            out.values[c].append(v)
        if "run_key" in found:
            out.run_id.append(row.values["run_key"])
        if "flag" in found:
            out.flags.append(row.values["flag"].lower() in _TRUE)
        if "experiment" in found:
            out.experiment.append(row.values["experiment"])
        if "trunk_key" in found:
            out.trunk.append(row.values["trunk_key"])
        out.lines.append(row.line)
    return out
