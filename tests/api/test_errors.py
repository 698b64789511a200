"""Every error path answers one envelope: `{"error": {"code", "message", "details"}}`, with
`details` null when there is nothing to add (never `{}` or `[]`)."""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from httpx import Response

from service.api.idempotency import IN_PROGRESS
from service.app import create_app
from service.envelope import error_body
from service.settings import Settings
from service.store.models import IdempotencyRecord
from tests.conftest import ADMIN_TOKEN

MAX_BODY = 4096
AS_ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@dataclass(frozen=True)
class Case:
    request: Callable[[TestClient, str], Response]
    status: int
    code: str
    details: Any
    headers: dict[str, str] = field(default_factory=dict)
    message_has: str = ""


def _unknown_experiment(client: TestClient, _: str) -> Response:
    return client.get("/v1/experiments/nope", headers=AS_ADMIN)


def _unknown_path(client: TestClient, _: str) -> Response:
    return client.get("/v1/nowhere", headers=AS_ADMIN)


def _invalid_body(client: TestClient, _: str) -> Response:
    return client.post("/v1/experiments", json={"name": "exp", "colour": "red"}, headers=AS_ADMIN)


def _not_utf8(client: TestClient, _: str) -> Response:
    headers = {**AS_ADMIN, "Content-Type": "application/json"}
    return client.post("/v1/keys", content=b"\xa3\x04", headers=headers)


def _no_key(client: TestClient, _: str) -> Response:
    return client.post("/v1/experiments", json={"name": "exp"})


def _missing_scope(client: TestClient, _: str) -> Response:
    made = client.post("/v1/keys", json={"name": "reader", "scopes": ["read"]}, headers=AS_ADMIN)
    reader = {"Authorization": f"Bearer {made.json()['token']}"}
    return client.post("/v1/experiments", json={"name": "exp"}, headers=reader)


def _declared_too_large(client: TestClient, _: str) -> Response:
    return client.post("/v1/experiments", content=b"x" * (MAX_BODY + 1), headers=AS_ADMIN)


def _chunked_too_large(client: TestClient, _: str) -> Response:
    chunks = iter([b"{", b" " * MAX_BODY, b"}"])  # no Content-Length: cut off while read
    return client.post("/v1/experiments", content=chunks, headers=AS_ADMIN)


def _rate_limited(client: TestClient, _: str) -> Response:
    for _attempt in range(3):  # the burst
        client.get("/v1/laws", headers=AS_ADMIN)
    return client.get("/v1/laws", headers=AS_ADMIN)


def _idempotency_in_progress(client: TestClient, database_url: str) -> Response:
    headers = {**AS_ADMIN, "Idempotency-Key": "k1"}
    assert client.post("/v1/experiments", json={"name": "exp"}, headers=headers).status_code == 201
    engine = sa.create_engine(database_url)
    with engine.begin() as connection:  # as if the first request were still being answered
        connection.execute(sa.update(IdempotencyRecord).values(status_code=IN_PROGRESS))
    engine.dispose()
    return client.post("/v1/experiments", json={"name": "exp"}, headers=headers)


def _idempotency_key_reused(client: TestClient, _: str) -> Response:
    headers = {**AS_ADMIN, "Idempotency-Key": "k1"}
    assert client.post("/v1/experiments", json={"name": "a"}, headers=headers).status_code == 201
    return client.post("/v1/experiments", json={"name": "b"}, headers=headers)


def _name_taken(client: TestClient, _: str) -> Response:
    assert client.post("/v1/experiments", json={"name": "exp"}, headers=AS_ADMIN).is_success
    return client.post("/v1/experiments", json={"name": "exp"}, headers=AS_ADMIN)


CASES = {
    "404 unknown resource": Case(
        _unknown_experiment, 404, "not_found", {"experiment": "nope"}, message_has="'nope'"
    ),
    "404 unknown path": Case(_unknown_path, 404, "not_found", None),
    "422 validation": Case(
        _invalid_body,
        422,
        "validation_error",
        [{"field": "colour", "message": "Extra inputs are not permitted"}],
        message_has="colour",
    ),
    "422 body not UTF-8": Case(
        _not_utf8, 422, "validation_error", [{"field": "body"}], message_has="UTF-8"
    ),
    "401 before the body": Case(
        _no_key, 401, "unauthenticated", None, {"www-authenticate": "Bearer"}, "Bearer"
    ),
    "403 missing scope": Case(_missing_scope, 403, "forbidden", {"required_scope": "write"}),
    "413 declared length": Case(
        _declared_too_large,
        413,
        "payload_too_large",
        {"limit_bytes": MAX_BODY},
        {"connection": "close"},
        f"{MAX_BODY} bytes",
    ),
    "413 chunked body": Case(
        _chunked_too_large, 413, "payload_too_large", {"limit_bytes": MAX_BODY}
    ),
    "429 rate limit": Case(
        _rate_limited,
        429,
        "rate_limited",
        {"limit_per_second": 0.5, "burst": 3.0, "retry_after_seconds": 2},
        {"retry-after": "2"},
        "too many requests",
    ),
    "409 idempotency in progress": Case(
        _idempotency_in_progress,
        409,
        "idempotency_in_progress",
        {"idempotency_key": "k1"},
        {"retry-after": "1"},
    ),
    "422 idempotency key reused": Case(
        _idempotency_key_reused, 422, "idempotency_key_reused", {"idempotency_key": "k1"}
    ),
    "409 name taken": Case(_name_taken, 409, "conflict", {"experiment": "exp"}),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_every_error_has_one_envelope(database_url: str, case: Case) -> None:
    settings = Settings(
        database_url=database_url,
        auth=True,
        bootstrap_admin_key=ADMIN_TOKEN,
        fit_runner=False,
        max_body_bytes=MAX_BODY,
        rate_limit_per_second=0.5 if case.code == "rate_limited" else 0,
        rate_limit_burst=3,
    )
    with TestClient(create_app(settings)) as client:
        response = case.request(client, database_url)
    assert response.status_code == case.status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert list(body) == ["error"]
    assert list(body["error"]) == ["code", "message", "details"]
    assert body["error"]["code"] == case.code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert case.message_has in body["error"]["message"]
    assert body["error"]["details"] == case.details
    for name, value in case.headers.items():
        assert response.headers[name] == value


@pytest.mark.parametrize("empty", [None, {}, []])
def test_details_with_nothing_to_add_are_null(empty: Any) -> None:
    assert error_body("conflict", "taken", empty).details is None
