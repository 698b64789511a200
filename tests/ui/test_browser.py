"""The dashboard in headless Chromium against a real server: the Chinchilla data imported and
fitted, the experiment page with a recommendation and its plots. Screenshots go to
test-artifacts/ui/ (git-ignored). Chromium missing: skipped here, a failure when CI=true."""

import shutil
import subprocess
import tempfile
from pathlib import Path

import httpx
import pytest

from service.settings import Settings
from service.testing import live_server
from tests.api.test_fits import EPOCH_CSV
from tests.conftest import IN_CI

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "ui"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1280,1600",
]


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        reason = "chromium is not installed (apt-get install chromium)"
        if IN_CI:
            pytest.fail(reason)
        pytest.skip(reason)
    return found


def browse(binary: str, *args: str) -> str:
    with tempfile.TemporaryDirectory() as profile:
        done = subprocess.run(
            [binary, *FLAGS, f"--user-data-dir={profile}", *args],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
    return done.stdout


@pytest.mark.slow
def test_experiment_page_in_chromium(tmp_path: Path, sqlite_template: Path) -> None:
    binary = chromium()
    database = tmp_path / "scaling.db"
    shutil.copy(sqlite_template, database)
    settings = Settings(
        database_url=f"sqlite:///{database}",
        auth=False,
        fit_runner=False,
        refit_debounce_seconds=0,
    )
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with live_server(settings) as base, httpx.Client(base_url=base, timeout=120) as api:
        created = api.post(
            "/v1/experiments",
            json={"name": "chinchilla", "description": "Hoffmann et al. 2022, Epoch's extraction"},
        )
        assert created.status_code == 201, created.text
        imported = api.post(
            "/v1/experiments/chinchilla/runs:import",
            content=EPOCH_CSV.read_text(),
            headers={"content-type": "text/csv"},
        )
        assert imported.status_code == 201, imported.text
        fitted = api.post("/v1/experiments/chinchilla/fits", json={"bootstrap": 20, "seed": 1})
        assert fitted.status_code == 201, fitted.text
        fit_id = fitted.json()["id"]
        expected = api.get(
            "/v1/experiments/chinchilla/recommendation", params={"flops": 5.88e23}
        ).json()

        page = f"{base}/ui/experiments/chinchilla?budget_kind=flops&flops=5.88e23&confidence=0.9"
        dom = browse(binary, "--dump-dom", page)
        (ARTIFACTS / "experiment.html").write_text(dom)
        assert 'id="answer"' in dom
        assert "Tokens / param" in dom
        assert f"{expected['params']:.3g}" in dom
        for kind in ("isoflop", "frontier", "residuals"):
            src = f"/ui/fits/{fit_id}/plots/{kind}.svg"
            assert f'src="{src}"' in dom
            plot = api.get(src)  # what the browser loads for the <img>
            assert plot.status_code == 200
            assert plot.headers["content-type"] == "image/svg+xml"

        browse(binary, f"--screenshot={ARTIFACTS / 'experiment.png'}", page)
        browse(binary, f"--screenshot={ARTIFACTS / 'index.png'}", f"{base}/ui")
    for name in ("experiment.png", "index.png"):
        shot = ARTIFACTS / name
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
        assert shot.stat().st_size > 10_000, name


@pytest.mark.slow
def test_api_docs_render_offline(tmp_path: Path, sqlite_template: Path) -> None:
    """Swagger UI and ReDoc load every asset from the service: Chromium here reaches nothing
    else, so operations on the page prove that /docs works without internet."""
    binary = chromium()
    database = tmp_path / "scaling.db"
    shutil.copy(sqlite_template, database)
    settings = Settings(database_url=f"sqlite:///{database}", auth=False, fit_runner=False)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with live_server(settings) as base, httpx.Client(base_url=base) as api:
        for page in ("/docs", "/redoc"):
            html = api.get(page).text
            assert "cdn" not in html.lower() and "https://" not in html, page
        wait = ["--virtual-time-budget=15000", "--run-all-compositor-stages-before-draw"]
        swagger = browse(binary, *wait, "--dump-dom", f"{base}/docs")
        (ARTIFACTS / "docs.html").write_text(swagger)
        assert "opblock" in swagger  # Swagger UI drew the operations
        assert "/v1/experiments/{name}/recommendation" in swagger
        redoc = browse(binary, *wait, "--dump-dom", f"{base}/redoc")
        assert "How to spend a budget" in redoc  # an operation's summary, drawn by ReDoc
        browse(binary, *wait, f"--screenshot={ARTIFACTS / 'docs.png'}", f"{base}/docs")
    assert (ARTIFACTS / "docs.png").stat().st_size > 10_000
