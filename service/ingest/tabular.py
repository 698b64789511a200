"""Runs from an imported CSV or JSON-lines file, read by service.io.table (the offline `fit`
reads files the same way): the accepted column names, an optional mapping, delimiter sniffing.

Canonical columns become the run's fields (`params`, `tokens`, `flops`, `loss`,
`unique_tokens`, `run_key`, `seed`, `source`, `loss_provenance`, `cooldown_fraction`,
`trunk_key`); a JSON-lines `curve` object ({"tokens": [...], "loss": [...]}) becomes the run's
curve; `budget`, `experiment` and `flag` and every other column go to `metadata` (a `curve` that
is no such object too, as before curves were stored). When tokens are absent but params and
flops are given, tokens = flops / (6 * params), the derivation Epoch AI use for the Chinchilla
figure data; the run's metadata says so. A row without a run_key gets one derived from its
content (``derive_keys``), so importing the same file twice stores its runs once.
"""

import hashlib
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from pydantic import ValidationError

from service.io.table import Format, Row, read_table
from service.schemas.runs import RunIn

RUN_FIELDS = (
    "params",
    "tokens",
    "flops",
    "loss",
    "unique_tokens",
    "run_key",
    "seed",
    "source",
    "loss_provenance",
    "cooldown_fraction",
    "trunk_key",
)
NUMERIC_FIELDS = ("params", "tokens", "flops", "loss", "unique_tokens", "seed", "cooldown_fraction")
DERIVED_KEY_PREFIX = "content-"


@dataclass
class ParsedFile:
    runs: list[RunIn] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    rows: int = 0


def _scalar(text: str) -> Any:
    """A CSV cell as the value it spells: number, bool, or the text itself."""
    if text in ("True", "true"):
        return True
    if text in ("False", "false"):
        return False
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def _number(value: Any) -> Any:
    """A CSV cell of a numeric field as a number (JSON lines bring numbers already); text that
    is no number stays text, so validation names the field."""
    if not isinstance(value, str):
        return value
    try:
        return int(value)
    except ValueError:
        pass
    try:
        return float(value)
    except ValueError:
        return value


def _to_run_fields(row: Row, columns: Mapping[str, str], text_cells: bool) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    metadata: dict[str, Any] = {}
    for canon, value in row.values.items():
        if value is None or value == "":
            continue
        if canon in RUN_FIELDS:
            numeric = text_cells and canon in NUMERIC_FIELDS
            fields[canon] = _number(value) if numeric else value
        else:  # budget, experiment, flag: kept, under the column's own name
            metadata[columns.get(canon, canon)] = (
                _scalar(value) if isinstance(value, str) else value
            )
    for column, value in row.extra.items():
        if value is None or value == "":
            continue
        if column == "metadata" and isinstance(value, dict):
            metadata.update(value)
        elif column == "curve" and isinstance(value, dict):
            fields["curve"] = value  # JSON lines: {"tokens": [...], "loss": [...]}
        else:
            metadata[column] = _scalar(value) if isinstance(value, str) else value
    if "tokens" not in fields and "params" in fields and "flops" in fields:
        try:
            fields["tokens"] = float(fields["flops"]) / (6.0 * float(fields["params"]))
            metadata["tokens_derived"] = "flops / (6 * params)"
        except (TypeError, ValueError, ZeroDivisionError):
            pass  # the missing or invalid value is reported by validation below
    if metadata:
        fields["metadata"] = metadata
    return fields


def _validation_errors(row: int, exc: ValidationError) -> list[dict[str, Any]]:
    return [
        {
            "row": row,
            "field": ".".join(str(part) for part in error["loc"]) or None,
            "message": error["msg"],
        }
        for error in exc.errors()
    ]


def _derive_keys(runs: list[RunIn]) -> list[RunIn]:
    """A key from each keyless run's content (the n-th identical row gets suffix n)."""
    seen: Counter[str] = Counter()
    keyed = []
    for run in runs:
        if run.run_key is None:
            body = orjson.dumps(run.identity(), option=orjson.OPT_SORT_KEYS)
            digest = hashlib.sha256(body).hexdigest()[:32]
            seen[digest] += 1
            key = f"{DERIVED_KEY_PREFIX}{digest}" + (f"-{seen[digest]}" if seen[digest] > 1 else "")
            run = run.model_copy(update={"run_key": key})
        keyed.append(run)
    return keyed


def parse_runs(
    text: str,
    fmt: Format,
    mapping: Mapping[str, str] | None = None,
    *,
    derive_keys: bool = True,
) -> ParsedFile:
    """Every row as a validated run, or a per-row error report; rows are 0-based data rows.
    Header problems raise ``service.io.table.TableError``."""
    table = read_table(text, fmt, mapping)
    result = ParsedFile(rows=len(table.rows) + len(table.errors))
    for bad in table.errors:
        result.errors.append({"row": bad.index, "field": None, "message": bad.reason})
    for row in table.rows:
        try:
            fields = _to_run_fields(row, table.columns, text_cells=fmt == "csv")
            result.runs.append(RunIn.model_validate(fields))
        except ValidationError as exc:
            result.errors.extend(_validation_errors(row.index, exc))
    result.errors.sort(key=lambda error: error["row"])
    if derive_keys:
        result.runs = _derive_keys(result.runs)
    return result
