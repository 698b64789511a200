"""Regressions for what the schemathesis run (test_fuzz.py) found, one test each."""

import json
from typing import Any

import pytest
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
    unknown, preset = response.json()["rows"]
    assert unknown["error"]["code"] == "not_found"
    assert "recommendation" in preset


def send(client: TestClient, method: str, path: str, body: Any) -> int:
    """Send `body` as JSON with NaN and Infinity literals allowed (httpx refuses them)."""
    content = json.dumps(body)
    headers = {"content-type": "application/json"}
    return client.request(method, path, content=content, headers=headers).status_code


def test_metadata_that_cannot_be_stored_exactly_is_422(client: TestClient) -> None:
    # An integer past 64 bits in metadata crashed the JSON encoder (500); NaN became null and
    # a NUL character broke PostgreSQL.
    make_experiment(client, "exp")
    run = {"params": 1e8, "tokens": 1e9, "loss": 3.0}
    bad_values = [2**70, float("nan"), "a\x00b", {"deep": [1, -(2**64)]}]
    for value in bad_values:
        body = {"name": "other", "metadata": {"k": value}}
        assert send(client, "POST", "/v1/experiments", body) == 422, value
        patched = send(client, "PATCH", "/v1/experiments/exp", {"metadata": {"k": value}})
        assert patched == 422, value
        for field in ("metadata", "hyperparameters"):
            posted = send(
                client, "POST", "/v1/experiments/exp/runs", {"runs": [{**run, field: {"k": value}}]}
            )
            assert posted == 422, (field, value)
    assert (
        client.post("/v1/experiments", json={"name": "x", "description": "a\x00"}).status_code
        == 422
    )
    assert client.post("/v1/keys", json={"name": "a\x00", "scopes": ["read"]}).status_code == 422
    assert client.get("/v1/experiments/exp/runs", params={"source": "a\x00"}).status_code == 422
    assert client.delete("/v1/keys/a%00b").status_code == 422
    ok = client.post("/v1/experiments/exp/runs", json={"runs": [{**run, "metadata": {"k": 2**62}}]})
    assert ok.status_code == 201, ok.text
    assert client.get("/v1/experiments/exp").json()["run_count"] == 1


def test_repeated_scopes_count_once(client: TestClient) -> None:
    # 40 repeated scopes overflowed the 64-character scopes column: a 500 on PostgreSQL.
    response = client.post("/v1/keys", json={"name": "k", "scopes": ["read", "write"] * 20})
    assert response.status_code == 201, response.text
    assert response.json()["scopes"] == ["read", "write"]


def test_flops_that_6nd_cannot_represent(client: TestClient) -> None:
    # Found by test_ingest_properties: 6 * 1e-300 * 1e-300 underflowed to 0 flops, violating a
    # CHECK (500 on PostgreSQL; on SQLite the row was silently dropped, then StopIteration: 500);
    # with flops given, the 6ND warning divided by zero.
    make_experiment(client, "exp")
    tiny = {"params": 1e-300, "tokens": 1e-300, "loss": 1.0}
    refused = client.post(
        "/v1/experiments/exp/runs", json={"runs": [tiny, {**tiny, "run_key": "k"}]}
    )
    assert refused.status_code == 422, refused.text
    assert "send flops explicitly" in refused.text
    huge = {"params": 1e300, "tokens": 1e300, "loss": 1.0}
    assert client.post("/v1/experiments/exp/runs", json={"runs": [huge]}).status_code == 422
    given = client.post("/v1/experiments/exp/runs", json={"runs": [{**tiny, "flops": 1.0}]})
    assert given.status_code == 201, given.text
    assert given.json()["warnings"][0]["code"] == "flops_disagree_6nd"
    assert client.get("/v1/experiments/exp").json()["run_count"] == 1


def test_parametric_fit_of_runs_spread_densely_over_compute(client: TestClient) -> None:
    # Found by bench/load.py: once enough runs filled the compute range with no gap over the
    # budget tolerance (10%), grouping chained them into one "budget" and every fit failed
    # with degenerate_data "all runs share one compute budget".
    make_experiment(client, "exp")
    runs = []
    for i in range(400):  # FLOPs evenly spaced over 3 decades (gaps of 1.7%), sizes mixed
        flops = 10 ** (18 + 3 * i / 399)
        params = 1e7 * 10 ** (2 * ((i * 0.618034) % 1))
        tokens = flops / (6 * params)
        loss = 1.7 + 400 / params**0.34 + 410 / tokens**0.28
        runs.append({"params": params, "tokens": tokens, "loss": loss})
    assert client.post("/v1/experiments/exp/runs", json={"runs": runs}).status_code == 201
    response = client.post("/v1/experiments/exp/fits", json={})
    assert response.status_code == 201, response.text
    one_budget = [{**run, "tokens": 6e18 / (6 * run["params"])} for run in runs[:20]]
    make_experiment(client, "flat")
    assert client.post("/v1/experiments/flat/runs", json={"runs": one_budget}).status_code == 201
    degenerate = client.post("/v1/experiments/flat/fits", json={})
    assert degenerate.status_code == 422
    assert "one compute budget" in degenerate.json()["error"]["message"]


@pytest.mark.parametrize("after", [2**63, -(2**63) - 1, True, 0, 1.5])
def test_forged_page_tokens_are_422_on_every_list(client: TestClient, after: object) -> None:
    """A real token of each list route with its id forged to one outside the 64-bit column (or
    not an id) was a 500 (overflow in the driver); now 422."""
    import base64

    for name in ("exp", "other"):
        make_experiment(client, name)
    runs = [{"params": 1e8 * (k + 1), "tokens": 2e9, "loss": 3.0} for k in range(2)]
    assert client.post("/v1/experiments/exp/runs", json={"runs": runs}).status_code == 201
    jobs = [{"params": 1e8 * (k + 1), "tokens": 1e9} for k in range(2)]
    assert client.post("/v1/experiments/exp/jobs", json={"runs": jobs}).status_code == 201
    for path in ("/v1/experiments", "/v1/experiments/exp/runs", "/v1/jobs"):
        real = client.get(path, params={"limit": 1}).json()["next_page_token"]
        data = json.loads(base64.urlsafe_b64decode(real + "=" * (-len(real) % 4)))
        forged = base64.urlsafe_b64encode(json.dumps({**data, "after": after}).encode())
        token = forged.decode().rstrip("=")
        response = client.get(path, params={"limit": 1, "page_token": token})
        assert response.status_code == 422, (path, after, response.text[:200])
        assert "not a token this API issued" in response.json()["error"]["message"]


def test_trainer_values_the_databases_cannot_keep_are_422(client: TestClient) -> None:
    make_experiment(client, "exp")
    for raw in (
        '{"lr": NaN}',
        '{"lr": Infinity}',
        '{"note": "a\\u0000b"}',
        '{"x": 1180591620717411303424}',
    ):
        body = '{"runs": [{"params": 1e8, "tokens": 1e9, "trainer": ' + raw + "}]}"
        response = client.post(
            "/v1/experiments/exp/jobs", content=body, headers={"content-type": "application/json"}
        )
        assert response.status_code == 422, (raw, response.text[:200])
    assert client.get("/v1/jobs").json()["items"] == []


def test_huge_plans_are_answered_not_500(client: TestClient) -> None:
    make_experiment(client, "exp")
    plan = {"target_flops": 1e24, "budget_flops": 3.4e38, "max_flops_per_run": 3.4e38}
    proposed = client.post("/v1/experiments/exp/plans", json=plan)
    queued = client.post("/v1/experiments/exp/jobs", json={"plan": plan})
    assert proposed.status_code < 500 and queued.status_code < 500, queued.text[:300]
    assert proposed.status_code == 200 or proposed.status_code == queued.status_code == 422


def test_one_absurd_loss_among_normal_runs_is_a_422_fit(client: TestClient) -> None:
    """A loss of 1e-300 made the Newton polish raise LinAlgError (500); now a 422 naming it."""
    make_experiment(client, "exp")
    runs = [
        {"params": n, "tokens": d, "loss": 2 + 400 / n**0.3 + 400 / d**0.3}
        for n in (1e7, 3e7, 1e8, 3e8)
        for d in (1e9, 3e9, 1e10, 3e10)
    ]
    runs[0]["loss"] = 1e-300
    assert client.post("/v1/experiments/exp/runs", json={"runs": runs}).status_code == 201
    fitted = client.post("/v1/experiments/exp/fits", json={"bootstrap": 0})
    assert fitted.status_code == 422, fitted.text[:300]
    assert "1e-300" in fitted.json()["error"]["message"]
