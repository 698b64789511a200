"""The list printer the commands share (tables or JSON) and counts with their noun."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
from rich.console import Console

from service.cli.output import Column, count, print_list, table_of


@dataclass
class Row:
    name: str
    why: str


COLUMNS: list[Column[Row]] = [
    Column("name", lambda r: r.name),
    Column("why", lambda r: r.why, one_line=True),
]


def test_count_agrees_with_its_number() -> None:
    assert [count(n, "layer") for n in (0, 1, 2)] == ["0 layers", "1 layer", "2 layers"]
    assert count(1, "index", "indices") == "1 index"
    assert count(3, "index", "indices") == "3 indices"


def test_a_one_line_column_ends_in_an_ellipsis_instead_of_wrapping() -> None:
    rows = [Row("a", "because " * 30), Row("[bold]b", "short")]
    console = Console(width=60, record=True)
    console.print(table_of(rows, COLUMNS, "reasons"))
    lines = console.export_text().splitlines()
    body = [line for line in lines if "│" in line and "name" not in line]
    assert len(body) == 2  # a line a row
    assert "│ a " in body[0] and "…" in body[0]  # the short columns keep their width
    assert "[bold]b" in body[1]  # user text is never markup


def test_print_list_is_json_or_a_table(capsys: pytest.CaptureFixture[str]) -> None:
    rows = [Row("a", "x"), Row("b", "y")]
    print_list(
        [{"name": r.name} for r in rows],
        [Column("name", lambda r: r["name"])],
        title="t",
        json_out=True,
    )
    assert json.loads(capsys.readouterr().out) == [{"name": "a"}, {"name": "b"}]
    print_list(rows, COLUMNS, title="things", json_out=False)
    shown = capsys.readouterr().out
    assert "things" in shown and "why" in shown and "│ b" in shown
