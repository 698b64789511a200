"""Schemathesis over the whole OpenAPI document: no 5xx, every response as documented.

One app per backend for the whole module, seeded so that the spec's examples name existing
resources (experiment `chinchilla-massivetext`, run 1, fit 1). Each operation gets a bounded,
deterministic number of examples with the admin key.
"""

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
import sqlalchemy as sa
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, settings
from schemathesis import checks

from service.app import create_app
from service.settings import Settings
from tests.conftest import ADMIN_TOKEN, TABLES, grid_runs

SPEC = json.loads((Path(__file__).resolve().parents[2] / "openapi" / "openapi.json").read_text())
schema = schemathesis.openapi.from_dict(SPEC)
EXAMPLE_EXPERIMENT = "chinchilla-massivetext"
# Checks on the response itself; auth and scopes are walked by test_scopes.py.
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.response_headers_conformance,
]
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def _seed(client: TestClient) -> None:
    created = client.post("/v1/experiments", json={"name": EXAMPLE_EXPERIMENT}, headers=AUTH)
    assert created.status_code == 201, created.text
    runs = grid_runs()
    stored = client.post(
        f"/v1/experiments/{EXAMPLE_EXPERIMENT}/runs", json={"runs": runs}, headers=AUTH
    )
    assert stored.status_code == 201, stored.text
    fitted = client.post(
        f"/v1/experiments/{EXAMPLE_EXPERIMENT}/fits", json={"bootstrap": 0}, headers=AUTH
    )
    assert fitted.status_code == 201, fitted.text


# The requests transport calls a serializer for the request's keyword arguments, as its own
# serializers do; schemathesis's published Serializer type says bytes.
@schemathesis.serializer("text/csv", "application/x-ndjson")  # type: ignore[arg-type]
def _text(ctx: Any, value: Any) -> dict[str, Any]:
    text = value if isinstance(value, str | bytes) else json.dumps(value)
    return {"data": text.encode() if isinstance(text, str) else text}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def fuzz_client(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("fuzz") / "fuzz.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        url = f"sqlite:///{path}"
    else:
        url = request.getfixturevalue("postgres_template")
        engine = sa.create_engine(url)
        with engine.begin() as connection:
            connection.execute(sa.text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
        engine.dispose()
    app_settings = Settings(
        database_url=url,
        bootstrap_admin_key=ADMIN_TOKEN,
        fit_runner=False,
        refit_debounce_seconds=0,
        max_bootstrap=50,
        fit_inline_max_bootstrap=20,
    )
    with TestClient(create_app(app_settings), raise_server_exceptions=False) as client:
        _seed(client)
        yield client


@schema.parametrize()
@settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "25")),
    deadline=None,
    derandomize=not os.environ.get("FUZZ_RANDOM"),
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_api_matches_its_document(case: Any, fuzz_client: TestClient) -> None:
    kwargs = case.as_transport_kwargs(base_url="http://testserver", headers=AUTH)
    kwargs.pop("allow_redirects", None)
    kwargs.pop("follow_redirects", None)
    if not kwargs.get("cookies"):  # the spec has none; starlette warns about per-request ones
        kwargs.pop("cookies", None)
    if isinstance(kwargs.get("data"), bytes):  # requests' name; httpx calls raw bytes `content`
        kwargs["content"] = kwargs.pop("data")
    response = fuzz_client.request(**kwargs)
    assert response.status_code < 500, response.text
    case.validate_response(response, checks=CHECKS)
    if response.status_code >= 400:
        body = response.json()
        assert set(body) == {"error"}, body
        assert {"code", "message", "details"} <= set(body["error"]), body
