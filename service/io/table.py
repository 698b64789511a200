"""Tables of runs (CSV or JSON lines) as records under canonical column names: the one reader
behind the offline `fit` command and the server's import.

Headers match case-insensitively, with spaces, underscores and hyphens alike, against these
names (``ACCEPTED``); an explicit ``mapping`` (canonical name -> header as written) takes
precedence. CSV delimiters (``,``, ``;``, tab, ``|``) are sniffed from the header line. A header
that names a column twice, misses a required column or maps to a header that is not there is a
``TableError`` that lists the columns seen and the names accepted.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Format = Literal["csv", "jsonl"]

ACCEPTED: dict[str, tuple[str, ...]] = {
    "params": ("params", "n", "model size", "parameters", "num params", "n params"),
    "tokens": ("tokens", "d", "num tokens", "n tokens", "training tokens"),
    "flops": ("flops", "c", "training flop", "training flops", "compute"),
    "loss": ("loss", "val loss", "validation loss", "final loss", "eval loss"),
    "unique_tokens": ("unique tokens", "u d"),
    "run_key": ("run key", "run id"),
    "budget": ("budget",),
    "experiment": ("experiment",),
    "flag": ("outlier", "flag"),
    "seed": ("seed",),
    "source": ("source",),
    "loss_provenance": ("loss provenance",),
    "cooldown_fraction": ("cooldown fraction",),
    "trunk_key": ("trunk key", "trunk id"),
}
REQUIRED = "params and loss, and tokens or flops"
DELIMITERS = ",;\t|"


class TableError(ValueError):
    """The table's header cannot be read as runs."""


def normalise(header: str) -> str:
    return re.sub(r"[\s_\-]+", " ", header.strip().lower())


_LOOKUP = {alias: canon for canon, aliases in ACCEPTED.items() for alias in aliases}


def accepted_names() -> str:
    """The accepted column names, for error messages, --help and docs."""
    return "; ".join(f"{canon}: {', '.join(aliases)}" for canon, aliases in ACCEPTED.items())


@dataclass
class Row:
    line: int  # CSV: 1-based line of the file (the header is line 1); JSON lines: 1-based line
    index: int  # 0-based data row
    values: dict[str, Any]  # canonical name -> cell (CSV: text; JSON: any JSON value)
    extra: dict[str, Any]  # other columns, by header as written


@dataclass(frozen=True)
class Unreadable:
    """A data row that could not be read at all."""

    index: int  # 0-based data row
    line: int  # 1-based line of the file
    reason: str


@dataclass
class Table:
    columns: dict[str, str]  # canonical name -> header as written (CSV; JSON: seen so far)
    headers: list[str]
    rows: list[Row] = field(default_factory=list)
    errors: list[Unreadable] = field(default_factory=list)
    delimiter: str = ","


def resolve(headers: list[str], mapping: Mapping[str, str] | None = None) -> dict[str, str]:
    """canonical name -> header, from the mapping first and the accepted names after."""
    mapping = dict(mapping or {})
    unknown = sorted(set(mapping) - set(ACCEPTED))
    if unknown:
        raise TableError(f"cannot map {', '.join(unknown)}: the columns are {', '.join(ACCEPTED)}")
    absent = sorted(h for h in mapping.values() if h not in headers)
    if absent:
        raise TableError(
            f"mapped column(s) {', '.join(map(repr, absent))} not in the header; "
            f"columns seen: {', '.join(headers)}"
        )
    found: dict[str, str] = dict(mapping)
    taken = set(mapping.values())
    for header in headers:
        canon = _LOOKUP.get(normalise(header))
        if canon is None or header in taken or canon in mapping:
            continue
        if canon in found:
            raise TableError(
                f"columns {found[canon]!r} and {header!r} both name {canon}; keep one, or "
                f"choose with a mapping ({canon}=<column>)"
            )
        found[canon] = header
    return found


def _check_required(found: Mapping[str, str], headers: list[str]) -> None:
    missing = [c for c in ("params", "loss") if c not in found]
    if "tokens" not in found and "flops" not in found:
        missing.append("tokens or flops")
    if missing:
        raise TableError(
            f"missing column(s): {', '.join(missing)}. Columns seen: {', '.join(headers)}. "
            f"Accepted names (any case; spaces, _ and - alike): {accepted_names()}. Or map "
            "yours, e.g. column=params=model_size."
        )


def _sniff(first_line: str) -> str:
    counts = {d: first_line.count(d) for d in DELIMITERS}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _read_csv(text: str, mapping: Mapping[str, str] | None) -> Table:
    lines = text.splitlines()
    first = next((line for line in lines if line.strip()), "")
    if not first:
        raise TableError("the file has no header")
    delimiter = _sniff(first)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        headers = [h.strip() for h in next(reader)]
    except csv.Error as exc:
        raise TableError(f"the header line is not CSV: {exc}") from exc
    duplicated = sorted({h for h in headers if headers.count(h) > 1})
    if duplicated:
        raise TableError(f"the header names {', '.join(map(repr, duplicated))} twice")
    found = resolve(headers, mapping)
    _check_required(found, headers)
    by_header = {header: canon for canon, header in found.items()}
    table = Table(found, headers, delimiter=delimiter)
    index = 0
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:  # e.g. an unterminated quote: the rest cannot be read
            table.errors.append(Unreadable(index, reader.line_num, f"not CSV: {exc}"))
            break
        if not cells or all(not cell.strip() for cell in cells):
            continue
        if len(cells) != len(headers):
            more = "more" if len(cells) > len(headers) else "fewer"
            table.errors.append(
                Unreadable(index, reader.line_num, f"{more} cells than header columns")
            )
        else:
            values: dict[str, Any] = {}
            extra: dict[str, Any] = {}
            for header, cell in zip(headers, cells, strict=True):
                if header in by_header:
                    values[by_header[header]] = cell.strip()
                else:
                    extra[header] = cell.strip()
            table.rows.append(Row(reader.line_num, index, values, extra))
        index += 1
    return table


def _read_jsonl(text: str, mapping: Mapping[str, str] | None) -> Table:
    table = Table({}, [])
    index = 0
    for line, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
        except (json.JSONDecodeError, RecursionError) as exc:
            reason = exc.msg if isinstance(exc, json.JSONDecodeError) else "nested too deep"
            table.errors.append(Unreadable(index, line, f"not JSON: {reason}"))
            index += 1
            continue
        if not isinstance(record, dict):
            table.errors.append(Unreadable(index, line, "not a JSON object"))
            index += 1
            continue
        headers = [str(key) for key in record]
        try:
            found = resolve(headers, mapping)
        except TableError as exc:
            table.errors.append(Unreadable(index, line, str(exc)))
            index += 1
            continue
        by_header = {header: canon for canon, header in found.items()}
        values = {by_header[k]: v for k, v in record.items() if k in by_header}
        extra = {k: v for k, v in record.items() if k not in by_header}
        table.columns.update({c: h for c, h in found.items() if c not in table.columns})
        table.rows.append(Row(line, index, values, extra))
        index += 1
    return table


def read_table(text: str, fmt: Format = "csv", mapping: Mapping[str, str] | None = None) -> Table:
    """Read ``text``; header problems raise TableError, unreadable rows land in ``errors``."""
    return _read_csv(text, mapping) if fmt == "csv" else _read_jsonl(text, mapping)


def parse_mapping(pairs: list[str]) -> dict[str, str]:
    """``["params=model_size", ...]`` -> ``{"params": "model_size"}`` (CLI and query strings)."""
    mapping: dict[str, str] = {}
    for pair in pairs:
        canon, sep, header = pair.partition("=")
        if not sep or not canon.strip() or not header.strip():
            raise TableError(
                f"a column mapping is NAME=COLUMN, e.g. params=model_size, not {pair!r}"
            )
        mapping[canon.strip()] = header.strip()
    return mapping
