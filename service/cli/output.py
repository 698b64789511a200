"""How commands print: lists as a table for people or JSON for scripts, counts with their noun."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

import typer
from pydantic import BaseModel
from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from service.schemas.keys import KeyOut

Item = TypeVar("Item")

UNBOUNDED = 100_000  # columns: a table measured at this width takes its natural one


class PlainTable(Table):
    """A table whose string cells and title are shown as written: names, descriptions, run keys
    and messages come from users and are never read as rich markup."""

    def __init__(self, *headers: str, title: str | None = None, **options: Any) -> None:
        super().__init__(*headers, title=Text(title) if title is not None else None, **options)

    def add_row(self, *cells: Any, **options: Any) -> None:
        super().add_row(*(Text(c) if isinstance(c, str) else c for c in cells), **options)


@dataclass(frozen=True)
class Column(Generic[Item]):
    """A column of a list: its header and how an item fills its cell."""

    header: str
    cell: Callable[[Item], str | RenderableType]
    # One line a row: what does not fit ends in an ellipsis (--json has it whole).
    one_line: bool = False


class FittedTable(PlainTable):
    """A table whose ratio columns give up width first. Rich shrinks every column of a table
    wider than the terminal, down to nothing for the ones that may wrap; expanded, the other
    columns keep their width and ratio columns share what is left."""

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        self.expand = False
        natural = Measurement.get(console, options.update_width(UNBOUNDED), self).maximum
        self.expand = natural > options.max_width
        yield from super().__rich_console__(console, options)


def table_of(items: Iterable[Item], columns: Sequence[Column[Item]], title: str) -> Table:
    table = FittedTable(*(column.header for column in columns), title=title)
    for rich_column, column in zip(table.columns, columns, strict=True):
        if column.one_line:
            rich_column.no_wrap, rich_column.overflow, rich_column.ratio = True, "ellipsis", 1
    for item in items:
        table.add_row(*(column.cell(item) for column in columns))
    return table


def print_list(
    items: Sequence[Item], columns: Sequence[Column[Item]], *, title: str, json_out: bool
) -> None:
    """A list as a JSON array on stdout (`--json`), else as a table."""
    if json_out:
        echo_json(list(items))
    else:
        Console().print(table_of(items, columns, title))


def echo_json(value: Any) -> None:
    """One JSON document on stdout: a pydantic model, a list of them, or plain data."""
    if isinstance(value, BaseModel):
        typer.echo(value.model_dump_json())
    elif isinstance(value, list):
        typer.echo(
            json.dumps(
                [v.model_dump(mode="json") if isinstance(v, BaseModel) else v for v in value]
            )
        )
    else:
        typer.echo(json.dumps(value))


def count(n: int, noun: str, plural: str | None = None) -> str:
    """`1 run`, `2 runs`, `0 runs`; irregular plurals given (`1 index`, `2 indices`)."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


def _when(moment: datetime | None) -> str:
    return moment.isoformat(timespec="seconds") if moment is not None else ""


# `keys list` on the database and `remote keys list` through the API.
KEY_COLUMNS: list[Column[KeyOut]] = [
    Column("prefix", lambda key: key.prefix),
    Column("name", lambda key: key.name),
    Column("scopes", lambda key: ",".join(key.scopes)),
    Column("created", lambda key: _when(key.created_at)),
    Column("revoked", lambda key: _when(key.revoked_at)),
]
