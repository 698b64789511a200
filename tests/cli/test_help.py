"""`--help` of every command and group of the console script, and the typed option choices."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import typer
from typer.testing import CliRunner

from service.cli.main import app

runner = CliRunner()


def _command_paths(command: object, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    yield path
    # typer vendors click: a group is whatever has sub-commands.
    for name, sub in getattr(command, "commands", {}).items():
        yield from _command_paths(sub, (*path, name))


PATHS = list(_command_paths(typer.main.get_command(app)))


def test_the_tree_holds_every_group() -> None:
    assert {("remote", "autofill", "set"), ("keys", "create"), ("fit",)} <= set(PATHS)
    assert len(PATHS) > 40


@pytest.mark.parametrize("path", PATHS, ids=lambda p: " ".join(p) or "scaling-service")
def test_help_is_clean(path: tuple[str, ...]) -> None:
    result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "100"})
    assert result.exit_code == 0, result.output
    text = result.output
    assert "Usage:" in text
    assert "<bool>" not in text  # flags take no value
    assert " ." not in text  # help text eaten as markup left its spaces behind
    assert "../" not in text  # no folder outside the repository
