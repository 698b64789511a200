"""The Idempotency-Key header replays the first response."""

from fastapi.testclient import TestClient

from tests.conftest import make_experiment


def test_replays_first_response(client: TestClient) -> None:
    make_experiment(client)
    body = {"runs": [{"params": 1, "tokens": 1, "loss": 1}]}
    headers = {"Idempotency-Key": "retry-1"}
    first = client.post("/v1/experiments/exp/runs", json=body, headers=headers)
    second = client.post("/v1/experiments/exp/runs", json=body, headers=headers)
    assert first.status_code == second.status_code == 201
    assert second.headers["idempotent-replayed"] == "true"
    assert second.json() == first.json()
    assert client.get("/v1/experiments/exp").json()["run_count"] == 1
    fresh = client.post("/v1/experiments/exp/runs", json=body, headers={"Idempotency-Key": "2"})
    assert fresh.status_code == 201
    assert client.get("/v1/experiments/exp").json()["run_count"] == 2


def test_reuse_with_other_body_is_422(client: TestClient) -> None:
    headers = {"Idempotency-Key": "k"}
    assert client.post("/v1/experiments", json={"name": "a"}, headers=headers).status_code == 201
    reused = client.post("/v1/experiments", json={"name": "b"}, headers=headers)
    assert reused.status_code == 422
    assert reused.json()["error"]["code"] == "idempotency_key_reused"
    assert client.get("/v1/experiments/b").status_code == 404


def test_errors_are_replayed_too_but_not_auth_failures(client: TestClient) -> None:
    headers = {"Idempotency-Key": "bad"}
    invalid = client.post("/v1/experiments", json={"name": "BAD"}, headers=headers)
    replay = client.post("/v1/experiments", json={"name": "BAD"}, headers=headers)
    assert invalid.status_code == replay.status_code == 422
    assert replay.headers["idempotent-replayed"] == "true"
    unauthenticated = client.post(
        "/v1/experiments",
        json={"name": "later"},
        headers={"Idempotency-Key": "auth", "Authorization": "Bearer wrong"},
    )
    assert unauthenticated.status_code == 401


def test_keys_belong_to_their_caller(client: TestClient) -> None:
    other = client.post("/v1/keys", json={"name": "o", "scopes": ["write"]}).json()["token"]
    headers = {"Idempotency-Key": "shared"}
    assert client.post("/v1/experiments", json={"name": "mine"}, headers=headers).status_code == 201
    theirs = client.post(
        "/v1/experiments",
        json={"name": "theirs"},
        headers={**headers, "Authorization": f"Bearer {other}"},
    )
    assert theirs.status_code == 201
    assert "idempotent-replayed" not in theirs.headers
