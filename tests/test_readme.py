"""The README's quickstart, run as written (but for the port) against a live server in dev
mode, as `make run` starts it: from nothing to a fit and a recommendation with an interval."""

import json
import re
import shutil
import subprocess
from pathlib import Path

from service.settings import Settings
from service.testing import live_server

ROOT = Path(__file__).resolve().parents[1]


def quickstart_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Quickstart with curl", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block is not None
    commands = block.group(1).replace("\\\n", " ").splitlines()
    return [line.split("#")[0].strip() if line.startswith("make") else line for line in commands]


def test_the_quickstart_reaches_a_recommendation(tmp_path: Path, sqlite_template: Path) -> None:
    commands = quickstart_commands()
    assert commands[0] == "make run &"  # started here as make run starts it: dev mode
    assert all("../" not in command for command in commands)  # nothing outside the clone
    path = tmp_path / "scaling.db"
    shutil.copy(sqlite_template, path)
    settings = Settings(database_url=f"sqlite:///{path}", auth=False)
    outputs = []
    with live_server(settings) as url:
        port = url.rsplit(":", 1)[1]
        for command in commands[1:]:
            done = subprocess.run(
                ["bash", "-c", command.replace("localhost:8000", f"127.0.0.1:{port}")],
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert done.returncode == 0, (command, done.stdout, done.stderr)
            outputs.append(done.stdout)
    imported = json.loads(outputs[2])
    assert imported["created"] == 234
    fit = json.loads(outputs[3])
    assert fit["status"] == "succeeded" and fit["bootstrap_samples"] == 100
    answer = json.loads(outputs[4])
    for name, (low, high) in {"params": (3e10, 1.2e11), "tokens": (8e11, 3e12)}.items():
        interval = answer["intervals"][name]
        assert interval["low"] < answer[name] < interval["high"]
        assert low < answer[name] < high
