"""docker-compose.yml and the Dockerfile agree with the CLI and settings (no engine here)."""

import os
import re
import shlex
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import typer.main
import yaml

from service.cli.main import app
from service.settings import Settings
from tests.conftest import IN_CI

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


def dockerfile_extras() -> set[str]:
    found = re.search(r"^ARG EXTRAS=(\S+)", (ROOT / "Dockerfile").read_text(), re.MULTILINE)
    assert found is not None
    return set(found.group(1).split(","))


def test_every_service_runs_a_command_its_image_has() -> None:
    """Services built from the Dockerfile run this CLI or Ray, which the image's extras
    install; the local worker trains, so the image has the train extra (torch) too."""
    extras = dockerfile_extras()
    assert {"train", "ray"} <= extras
    optional = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    assert any(dep.startswith("torch") for dep in optional["train"])
    assert any(dep.startswith("ray[default]") for dep in optional["ray"])
    for name, service in compose()["services"].items():
        if "build" not in service:
            assert service["image"].startswith("postgres:"), name  # the only stock image
            continue
        command = service["command"]
        if command[0] == "ray":
            assert command[1] == "start", name
        else:
            check_command(command)


def test_compose_file_is_valid_compose() -> None:
    """docker-compose (Debian's, installed by .ci/run) validates the file against the Compose
    schema without a Docker engine."""
    binary = shutil.which("docker-compose")
    if binary is None:
        if IN_CI:
            pytest.fail("docker-compose is not installed (apt-get install docker-compose)")
        pytest.skip("docker-compose is not installed (apt-get install docker-compose)")
    done = subprocess.run(
        [binary, "-f", str(ROOT / "docker-compose.yml"), "--profile", "ray", "config", "-q"],
        env={**os.environ, "SCALING_BOOTSTRAP_ADMIN_KEY": "ss_abc_def"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


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


def test_the_api_and_every_worker_get_the_webhook_settings() -> None:
    services = compose()["services"]
    for name in ("api", "worker", "ray-worker"):
        environment = services[name]["environment"]
        for variable in ("SCALING_WEBHOOK_SECRET_KEY", "SCALING_WEBHOOK_ALLOWED_HOSTS"):
            assert variable in environment, f"{name} lacks {variable}"
    # Unset on the host, compose passes "": webhooks off, not a key that fails to parse.
    settings = Settings(webhook_secret_key="", webhook_allowed_hosts="")
    assert settings.webhook_secret_key is None
    assert settings.webhook_allowed_hosts == []


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
