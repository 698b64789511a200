"""Each limit answers 413 or 422 naming it: body, batch, page, bootstrap size, fit time."""

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.fits.runner import FitRunner
from service.settings import Settings
from tests.conftest import ADMIN_TOKEN, grid_runs, make_experiment


@pytest.fixture
def limited(database_url: str) -> Iterator[TestClient]:
    settings = Settings(
        database_url=database_url,
        bootstrap_admin_key=ADMIN_TOKEN,
        fit_runner=False,
        refit_debounce_seconds=0,
        max_body_bytes=4096,
        max_batch_runs=3,
        max_page_size=5,
        max_bootstrap=40,
        fit_inline_max_bootstrap=10,
        fit_timeout_seconds=1e-6,
    )
    with TestClient(create_app(settings)) as client:
        client.headers["Authorization"] = f"Bearer {ADMIN_TOKEN}"
        make_experiment(client, "exp")
        yield client


def error(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()["error"]
    return body


def test_body_size(limited: TestClient) -> None:
    csv = "params,tokens,loss\n" + "1,1,1\n" * 1000
    response = limited.post(
        "/v1/experiments/exp/runs:import", content=csv, headers={"content-type": "text/csv"}
    )
    body = error(response, 413)
    assert "4096 bytes" in body["message"] and body["details"] == {"limit_bytes": 4096}


def test_batch_size(limited: TestClient) -> None:
    runs = grid_runs()[:4]
    body = error(limited.post("/v1/experiments/exp/runs", json={"runs": runs}), 422)
    assert "at most 3 runs" in body["message"] and body["details"]["limit"] == 3
    csv = "params,tokens,loss\n" + "1,1,1\n" * 4
    response = limited.post(
        "/v1/experiments/exp/runs:import", content=csv, headers={"content-type": "text/csv"}
    )
    assert error(response, 422)["details"]["limit"] == 3
    assert limited.get("/v1/experiments/exp").json()["run_count"] == 0


def test_page_size(limited: TestClient) -> None:
    paths = ("/v1/experiments", "/v1/experiments/exp/runs", "/v1/experiments/exp/fits", "/v1/jobs")
    for path in paths:
        body = error(limited.get(path, params={"limit": 6}), 422)
        assert "SCALING_MAX_PAGE_SIZE" in body["message"], body
        assert body["details"] == {"field": "limit", "limit": 5}
        assert limited.get(path, params={"limit": 5}).status_code == 200
        assert limited.get(path).status_code == 200  # the default page shrinks to the limit
        assert error(limited.get(path, params={"limit": 1001}), 422)["code"] == "validation_error"


def test_bootstrap_size(limited: TestClient) -> None:
    body = error(limited.post("/v1/experiments/exp/fits", json={"bootstrap": 41}), 422)
    assert "40 resamples" in body["message"] and body["details"]["limit"] == 40


def stored_grid(client: TestClient) -> None:
    for start in range(0, 20, 3):
        batch = grid_runs()[start : start + 3]
        assert client.post("/v1/experiments/exp/runs", json={"runs": batch}).status_code == 201


def test_background_fit_past_its_time_limit_fails_with_the_reason(limited: TestClient) -> None:
    stored_grid(limited)
    queued = limited.post("/v1/experiments/exp/fits", json={"bootstrap": 30})
    assert queued.status_code == 202, queued.text
    app: Any = limited.app
    assert FitRunner(app.state.session_factory, app.state.fit_policy).run_once()
    fit = limited.get(queued.headers["location"]).json()
    assert fit["status"] == "failed"
    assert fit["error"]["code"] == "fit_timeout"
    assert "SCALING_FIT_TIMEOUT_SECONDS" in fit["error"]["message"]
    assert fit["error"]["details"]["limit_seconds"] == 1e-6
    assert fit["parameters"] is None


def test_inline_fit_past_its_time_limit_is_422_and_stores_nothing(limited: TestClient) -> None:
    stored_grid(limited)
    body = error(limited.post("/v1/experiments/exp/fits", json={"bootstrap": 5}), 422)
    assert body["code"] == "fit_timeout"
    assert limited.get("/v1/experiments/exp/fits").json()["items"] == []


def test_a_chunked_body_over_the_limit_is_413_with_an_idempotency_key_too(
    client: TestClient,
) -> None:
    """A 40 MB chunked POST (no Content-Length) was 413 without the header and 500 with it."""
    make_experiment(client)

    def chunks() -> Iterator[bytes]:
        for _ in range(40):
            yield b"x" * 2**20

    for headers in ({}, {"Idempotency-Key": "big"}):
        response = client.post(
            "/v1/experiments/exp/runs",
            content=chunks(),
            headers={"content-type": "application/json", **headers},
        )
        assert response.status_code == 413, (headers, response.text[:200])
