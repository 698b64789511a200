"""`serve --workers 2` comes up even when its worker processes start slowly (a loaded machine)."""

from pathlib import Path

import httpx
import pytest

from service.testing import serve_in_subprocess

# Imported by every Python process started with this folder on PYTHONPATH; the workers uvicorn
# spawns (multiprocessing's "--multiprocessing-fork" children) then need 7 s to start, past
# uvicorn's default 5 s ping.
SLOW_START = """
import os, sys, time
if os.environ.get("SCALING_TEST_SLOW_START") and "--multiprocessing-fork" in sys.argv:
    time.sleep(float(os.environ["SCALING_TEST_SLOW_START"]))
"""


@pytest.mark.slow
def test_slow_starting_workers_are_waited_for_not_killed(
    sqlite_template: Path, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(SLOW_START)
    database = tmp_path / "scaling.db"
    database.write_bytes(sqlite_template.read_bytes())
    log_file = tmp_path / "server.log"
    env = {
        "SCALING_DATABASE_URL": f"sqlite:///{database}",
        "SCALING_AUTH": "false",
        "SCALING_LOG_LEVEL": "info",
        "SCALING_TEST_SLOW_START": "7",
        "PYTHONPATH": f"{site}:{Path.cwd()}",
    }
    with serve_in_subprocess(env, workers=2, stderr_path=log_file, start_timeout=120) as base:
        assert httpx.get(f"{base}/healthz", timeout=10).status_code == 200
    log = log_file.read_text()
    assert "died" not in log, log
