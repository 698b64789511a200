"""docker-compose.yml and the Dockerfile agree with the CLI and settings (no engine here)."""

import re
import shlex
from pathlib import Path
from typing import Any

import typer.main
import yaml

from service.cli.main import app
from service.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return data


def check_command(argv: list[str]) -> None:
    """argv names a real subcommand and only options it accepts."""
    assert argv[0] == "scaling-service", argv
    group = typer.main.get_command(app)
    context = group.context_class(group)
    command = group.get_command(context, argv[1])  # type: ignore[attr-defined]
    assert command is not None, f"no command {argv[1]!r}"
    command.make_context(argv[1], list(argv[2:]))  # raises on unknown or malformed options


def test_compose_commands_exist_in_the_cli() -> None:
    services = compose()["services"]
    for name in ("migrate", "api", "worker", "ray-worker"):
        check_command(services[name]["command"])
    assert services["ray-worker"]["command"][:4] == [
        "scaling-service",
        "worker",
        "--executor",
        "ray",
    ]
    assert services["migrate"]["command"][1] == "migrate"
    assert services["api"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "healthcheck" in services["postgres"]


def test_compose_environment_names_real_settings() -> None:
    fields = {f"SCALING_{name.upper()}" for name in Settings.model_fields}
    for name, service in compose()["services"].items():
        for variable, value in service.get("environment", {}).items():
            if variable.startswith("SCALING_"):
                assert variable in fields, f"{name}: {variable} is not a setting"
            if variable == "SCALING_DATABASE_URL":
                assert str(value).startswith("postgresql+psycopg://")


def test_api_in_compose_keeps_auth_on() -> None:
    environment = compose()["services"]["api"]["environment"]
    assert environment["SCALING_AUTH"] == "true"
    assert "SCALING_BOOTSTRAP_ADMIN_KEY" in environment


def test_dockerfile_runs_as_non_root_and_serves() -> None:
    text = (ROOT / "Dockerfile").read_text()
    users = re.findall(r"^USER\s+(\S+)", text, flags=re.MULTILINE)
    assert users and users[-1] not in ("root", "0")
    cmd = re.search(r"^CMD\s+(\[.*\])", text, flags=re.MULTILINE)
    assert cmd is not None
    check_command(yaml.safe_load(cmd.group(1)))
    assert "COPY migrations" in text


def test_makefile_run_uses_the_cli() -> None:
    text = (ROOT / "Makefile").read_text()
    commands = re.findall(r"\$\(BIN\)/scaling-service ([^>&;\\\n]*)", text)
    assert {command.split()[0] for command in commands} >= {"migrate", "serve", "worker"}
    for command in commands:
        values = (
            command.replace("$(HOST)", "127.0.0.1")
            .replace("$(PORT)", "8000")
            .replace("$(CPU_SLOTS)", "2")
        )
        check_command(["scaling-service", *shlex.split(values)])
