"""The Idempotency-Key header replays the first response."""

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import sqlalchemy as sa
from fastapi.testclient import TestClient

from service.testing import live_server
from tests.api.test_auth import key
from tests.client.conftest import server_settings
from tests.conftest import ADMIN_TOKEN, make_experiment


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


def test_a_revoked_key_replays_nothing(client: TestClient) -> None:
    """Replay comes after authentication: a revoked key's stored answers are out of reach."""
    make_experiment(client)
    writer = key(client, "write")
    headers = {"Idempotency-Key": "once", "Authorization": f"Bearer {writer}"}
    body = {"runs": [{"params": 1, "tokens": 1, "loss": 1}]}
    assert client.post("/v1/experiments/exp/runs", json=body, headers=headers).status_code == 201
    prefix = writer.split("_")[1]
    assert client.delete(f"/v1/keys/{prefix}").status_code == 200
    replay = client.post("/v1/experiments/exp/runs", json=body, headers=headers)
    assert replay.status_code == 401
    assert "idempotent-replayed" not in replay.headers


def test_a_created_key_is_never_stored_in_clear(client: TestClient, database_url: str) -> None:
    """POST /v1/keys with an Idempotency-Key (the CLI sends one): the token is answered once and
    found in no table afterwards; a retry makes a new key rather than replaying the secret."""
    headers = {"Idempotency-Key": "new-admin"}
    body = {"name": "ops", "scopes": ["admin"]}
    created = client.post("/v1/keys", json=body, headers=headers)
    assert created.status_code == 201
    token = created.json()["token"]
    secret = token.split("_", 2)[2]
    engine = sa.create_engine(database_url)
    with engine.connect() as connection:
        for table in sa.inspect(connection).get_table_names():
            for row in connection.execute(sa.text(f'SELECT * FROM "{table}"')):
                text = " ".join(
                    cell.decode("latin-1") if isinstance(cell, bytes) else str(cell) for cell in row
                )
                assert secret not in text, table
    engine.dispose()
    again = client.post("/v1/keys", json=body, headers=headers)
    assert again.status_code == 201 and "idempotent-replayed" not in again.headers
    assert again.json()["token"] != token


def test_the_key_belongs_to_the_principal_not_the_header_spelling(client: TestClient) -> None:
    make_experiment(client)
    writer = key(client, "write")
    body = {"runs": [{"params": 1, "tokens": 1, "loss": 1}]}
    for scheme in ("Bearer", "bearer", "BEARER"):
        headers = {"Idempotency-Key": "spelt", "Authorization": f"{scheme} {writer}"}
        answer = client.post("/v1/experiments/exp/runs", json=body, headers=headers)
        assert answer.status_code == 201
    assert client.get("/v1/experiments/exp").json()["run_count"] == 1


def test_concurrent_requests_with_one_key_run_once(
    database_url: str, tmp_path: Any, sqlite_template: Any
) -> None:
    """Twenty concurrent POSTs of one unkeyed 200-run batch with one Idempotency-Key, over real
    HTTP: one execution; the others replay it or are told it is in progress (409)."""
    settings = server_settings(database_url)
    with live_server(settings) as url:
        admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        assert httpx.post(f"{url}/v1/experiments", json={"name": "exp"}, headers=admin).is_success
        runs = [{"params": 1e6 * (i + 1), "tokens": 1e9, "loss": 3.0} for i in range(200)]
        headers = {**admin, "Idempotency-Key": "one-batch"}

        def post(_: int) -> httpx.Response:
            return httpx.post(
                f"{url}/v1/experiments/exp/runs", json={"runs": runs}, headers=headers, timeout=60
            )

        with ThreadPoolExecutor(20) as pool:
            answers = list(pool.map(post, range(20)))
        count = httpx.get(f"{url}/v1/experiments/exp", headers=admin).json()["run_count"]
    assert count == 200
    statuses = sorted(a.status_code for a in answers)
    assert set(statuses) <= {201, 409}, statuses
    first = [a for a in answers if a.status_code == 201 and "idempotent-replayed" not in a.headers]
    assert len(first) == 1
    busy = [a for a in answers if a.status_code == 409]
    assert all(a.json()["error"]["code"] == "idempotency_in_progress" for a in busy)
    assert all(a.headers["retry-after"] == "1" for a in busy)
