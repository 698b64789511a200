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


LAWS = ("chinchilla", "kaplan", "data_constrained")
METHODS = ("parametric", "isoflop", "envelope")
SCOPES = ("read", "write", "admin")
# (command, its other arguments, option, the values it takes)
CHOICES = [
    ("fit", ["runs.csv"], "--law", LAWS),
    ("fit", ["runs.csv"], "--method", METHODS),
    ("keys create", ["--name", "ci"], "--scope", SCOPES),
    ("remote fit", ["exp"], "--law", LAWS),
    ("remote recommend", ["exp"], "--method", METHODS),
    ("remote experiments create", ["exp"], "--param-convention", ("total", "non_embedding")),
    ("remote experiments create", ["exp"], "--flops-formula", ("6ND", "reported")),
    ("remote runs import", ["pyproject.toml", "-e", "exp"], "--format", ("csv", "jsonl")),
    ("remote jobs list", [], "--status", ("queued", "running", "succeeded", "failed", "cancelled")),
    ("remote jobs list", [], "--origin", ("request", "plan", "autofill")),
    ("remote keys create", ["--name", "ci"], "--scope", SCOPES),
]


@pytest.mark.parametrize(
    ("command", "args", "option", "allowed"),
    [pytest.param(*case, id=f"{case[0]} {case[2]}") for case in CHOICES],
)
def test_a_value_outside_the_choices_is_a_usage_error_naming_them(
    command: str, args: list[str], option: str, allowed: tuple[str, ...]
) -> None:
    refused = runner.invoke(app, [*command.split(), *args, option, "nonsense"])
    assert refused.exit_code == 2, refused.output
    listed = ", ".join(repr(value) for value in allowed)
    assert f"Invalid value for '{option}'" in refused.output
    assert f"'nonsense' is not one of {listed}" in refused.output
    helped = runner.invoke(app, [*command.split(), "--help"]).output
    line = next(line for line in helped.splitlines() if line.strip().startswith(option))
    assert "|".join(allowed) in line  # `--law <chinchilla|kaplan|data_constrained>`
