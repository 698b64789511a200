"""Regressions for what the schemathesis run (test_fuzz.py) found, one test each."""

from fastapi.testclient import TestClient

from tests.conftest import make_experiment


def test_body_that_is_not_utf8_is_422_not_400(client: TestClient) -> None:
    # FastAPI answered an undecodable JSON body with an undocumented 400.
    for path in ("/v1/experiments", "/v1/keys", "/v1/recommendations"):
        response = client.post(
            path, content=b"\xa3\x04", headers={"content-type": "application/json"}
        )
        assert response.status_code == 422, (path, response.text)
        assert response.json()["error"]["code"] == "validation_error"


def test_id_beyond_64_bits_is_422_not_500(client: TestClient) -> None:
    # SQLite's driver raised OverflowError on an id past 2**63 - 1: a 500.
    huge = 2**77
    for path in (f"/v1/runs/{huge}", f"/v1/fits/{huge}", f"/v1/fits/{huge}/plots/isoflop.svg"):
        response = client.get(path)
        assert response.status_code == 422, (path, response.text)
    assert client.get(f"/v1/runs/{2**63 - 1}").status_code == 404
    response = client.post(
        "/v1/recommendations",
        json={"source": {"fit_id": huge}, "budget": {"flops": 1e21}},
    )
    assert response.status_code == 422, response.text


def test_compare_with_an_unknown_fit_answers_per_source(client: TestClient) -> None:
    # One unknown source made the whole comparison 404, an undocumented status, instead of
    # carrying its error beside the other sources' answers.
    make_experiment(client, "exp")
    response = client.post(
        "/v1/compare",
        json={
            "sources": [{"fit_id": 12345}, {"preset": "chinchilla-2022"}],
            "budget": {"flops": 1e21},
        },
    )
    assert response.status_code == 200, response.text
    unknown, preset = response.json()
    assert unknown["error"]["code"] == "not_found"
    assert "recommendation" in preset
