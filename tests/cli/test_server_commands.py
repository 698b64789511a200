"""serve, migrate, openapi and keys from the command line."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from service.cli.main import app

runner = CliRunner()


@pytest.fixture
def sqlite_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'var' / 'cli.db'}"
    monkeypatch.setenv("SCALING_DATABASE_URL", url)
    return url


def test_migrate_then_keys_lifecycle(sqlite_env: str) -> None:
    assert runner.invoke(app, ["migrate"]).exit_code == 0
    created = runner.invoke(app, ["keys", "create", "--name", "ci", "--scope", "write"])
    assert created.exit_code == 0, created.output
    token = created.stdout.strip().splitlines()[-1]
    assert token.startswith("ss_")
    prefix = token.split("_")[1]
    listed = runner.invoke(app, ["keys", "list"])
    assert prefix in listed.stdout and token.split("_", 2)[2] not in listed.stdout
    (key,) = json.loads(runner.invoke(app, ["keys", "list", "--json"]).stdout)
    assert (key["prefix"], key["name"], key["scopes"], key["revoked_at"]) == (
        prefix,
        "ci",
        ["write"],
        None,
    )
    assert runner.invoke(app, ["keys", "revoke", prefix]).exit_code == 0
    assert runner.invoke(app, ["keys", "revoke", "nope"]).exit_code != 0
    bad_scope = runner.invoke(app, ["keys", "create", "--name", "x", "--scope", "root"])
    assert bad_scope.exit_code == 2
    assert "'root' is not one of 'read', 'write', 'admin'" in bad_scope.output


def test_serve_refuses_unmigrated_database(sqlite_env: str) -> None:
    result = runner.invoke(app, ["serve", "--port", "1"])
    assert result.exit_code == 2
    assert "scaling-service migrate" in result.output


def test_serve_refuses_remote_bind_without_auth(
    sqlite_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCALING_AUTH", "false")
    result = runner.invoke(app, ["serve", "--host", "0.0.0.0", "--port", "1"])
    assert result.exit_code == 2
    assert "refusing to serve without auth" in result.output


def test_openapi_prints_the_spec() -> None:
    result = runner.invoke(app, ["openapi"])
    assert result.exit_code == 0
    spec = json.loads(result.stdout)
    assert "/v1/experiments/{name}/runs" in spec["paths"]
