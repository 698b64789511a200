"""Read runs from CSV or JSON lines, accepting the column names of the published data sets.

Recognised columns (case-sensitive, as the files spell them):
  params: `params`, `N`, `Model Size`        tokens: `tokens`, `D`
  flops:  `flops`, `C`, `Training FLOP`      loss:   `loss`
  and `run_key`, `unique_tokens`, `seed`, `source`. Every other column goes to `metadata`.
When tokens are absent but params and flops are given, tokens = flops / (6 * params), the
derivation Epoch AI use for the Chinchilla figure data; the run's metadata says so.
"""

import csv
import io
import json
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import ValidationError

from service.schemas.runs import RunIn

Format = Literal["csv", "jsonl"]

ALIASES = {
    "params": "params",
    "N": "params",
    "Model Size": "params",
    "tokens": "tokens",
    "D": "tokens",
    "flops": "flops",
    "C": "flops",
    "Training FLOP": "flops",
    "loss": "loss",
    "run_key": "run_key",
    "unique_tokens": "unique_tokens",
    "seed": "seed",
    "source": "source",
}
NUMERIC = {"params", "tokens", "flops", "loss", "unique_tokens"}


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


def _to_run_fields(record: dict[str, Any]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    metadata: dict[str, Any] = {}
    for column, value in record.items():
        if value is None or value == "":
            continue
        target = ALIASES.get(column)
        if target is None:
            metadata[column] = _scalar(value) if isinstance(value, str) else value
        elif target in fields:
            raise ValueError(f"columns name {target!r} twice")
        else:
            fields[target] = value
    if isinstance(record.get("metadata"), dict):
        metadata.pop("metadata")
        metadata.update(record["metadata"])
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


def _records(text: str, fmt: Format) -> list[tuple[int, dict[str, Any] | str]]:
    """(row index, record or the reason it could not be read) for each data row."""
    if fmt == "csv":
        reader = csv.DictReader(io.StringIO(text))
        if not reader.fieldnames:
            return []
        out: list[tuple[int, dict[str, Any] | str]] = []
        for index, record in enumerate(reader):
            if None in record:
                out.append((index, "more cells than header columns"))
            elif any(value is None for value in record.values()):
                out.append((index, "fewer cells than header columns"))
            else:
                out.append((index, dict(record)))
        return out
    lines = [line for line in text.splitlines() if line.strip()]
    parsed: list[tuple[int, dict[str, Any] | str]] = []
    for index, line in enumerate(lines):
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            parsed.append((index, f"not JSON: {exc.msg}"))
            continue
        parsed.append((index, value if isinstance(value, dict) else "not a JSON object"))
    return parsed


def parse_runs(text: str, fmt: Format) -> ParsedFile:
    """Every row as a validated run, or a per-row error report; rows are 0-based data rows."""
    result = ParsedFile()
    for index, record in _records(text, fmt):
        result.rows += 1
        if isinstance(record, str):
            result.errors.append({"row": index, "field": None, "message": record})
            continue
        try:
            result.runs.append(RunIn.model_validate(_to_run_fields(record)))
        except ValueError as exc:
            if isinstance(exc, ValidationError):
                result.errors.extend(_validation_errors(index, exc))
            else:
                result.errors.append({"row": index, "field": None, "message": str(exc)})
    return result
