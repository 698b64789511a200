"""A client generated from openapi/openapi.json, as platforms build theirs, runs the quickstart.

openapi-python-client (the dev extra) generates the package into a temporary folder; every
operation must come out as a function named by its operationId, and create experiment, import
runs, fit and recommendation must work through them against a live server.
"""

from __future__ import annotations

import importlib
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from service.settings import Settings
from service.testing import live_server
from tests.conftest import ADMIN_TOKEN

ROOT = Path(__file__).resolve().parents[1]
DOCUMENT = ROOT / "openapi" / "openapi.json"
EPOCH_CSV = ROOT / "examples" / "data" / "epoch_chinchilla_svg_extracted_data.csv"


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    generator = shutil.which("openapi-python-client", path=str(Path(sys.executable).parent))
    if generator is None:
        pytest.fail("openapi-python-client is missing: install the dev extra (make test does)")
    out = tmp_path_factory.mktemp("generated")
    done = subprocess.run(
        [
            generator,
            "generate",
            "--path",
            str(DOCUMENT),
            "--meta",
            "none",
            "--output-path",
            str(out / "scaling_client"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert (out / "scaling_client" / "client.py").exists(), done.stdout + done.stderr
    sys.path.insert(0, str(out))
    try:
        yield out / "scaling_client"
    finally:
        sys.path.remove(str(out))
        for name in [
            m for m in sys.modules if m == "scaling_client" or m.startswith("scaling_client.")
        ]:
            del sys.modules[name]


def test_every_operation_is_generated_under_its_operation_id(generated: Path) -> None:
    document = json.loads(DOCUMENT.read_text())
    ids = {op["operationId"] for path in document["paths"].values() for op in path.values()}
    files = {f.stem for f in (generated / "api").glob("*/*.py") if f.stem != "__init__"}
    assert ids == files
    assert "import_runs" in files and "create_experiment" in files


def test_quickstart_through_the_generated_client(
    generated: Path, tmp_path: Path, sqlite_template: Path
) -> None:
    shutil.copy(sqlite_template, tmp_path / "scaling.db")
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'scaling.db'}",
        bootstrap_admin_key=ADMIN_TOKEN,
        fit_runner=False,
        refit_debounce_seconds=0,
        log_level="warning",
    )
    pkg = importlib.import_module("scaling_client")
    api = {
        name: importlib.import_module(f"scaling_client.api.{tag}.{name}")
        for tag, name in [
            ("experiments", "create_experiment"),
            ("runs", "import_runs"),
            ("fits", "create_fit"),
            ("recommendations", "get_recommendation"),
        ]
    }
    models: Any = importlib.import_module("scaling_client.models")
    types: Any = importlib.import_module("scaling_client.types")
    with live_server(settings) as url:
        client = pkg.AuthenticatedClient(base_url=url, token=ADMIN_TOKEN)
        created = api["create_experiment"].sync_detailed(
            client=client, body=models.ExperimentCreate(name="chinchilla")
        )
        assert created.status_code == 201, created.content
        with EPOCH_CSV.open("rb") as csv:
            imported = api["import_runs"].sync_detailed(
                "chinchilla", client=client, body=types.File(payload=csv, file_name="runs.csv")
            )
        assert imported.status_code == 201, imported.content
        assert imported.parsed.created > 200
        fitted = api["create_fit"].sync_detailed(
            "chinchilla", client=client, body=models.FitCreate(bootstrap=20, seed=1)
        )
        assert fitted.status_code == 201, fitted.content
        answer = api["get_recommendation"].sync(
            "chinchilla", client=client, flops=5.88e23, confidence=0.9
        )
        assert isinstance(answer, models.Recommendation)
        # Chinchilla's own budget: tens of billions of parameters, with an interval around them.
        assert 1e10 < answer.params < 2e11
        interval = answer.intervals.additional_properties["params"]
        assert interval.low < answer.params < interval.high
