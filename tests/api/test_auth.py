"""API keys and scopes."""

import threading

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.auth import BootstrapKeyMismatchError
from service.settings import Settings
from tests.conftest import ADMIN_TOKEN


def key(client: TestClient, *scopes: str) -> str:
    response = client.post("/v1/keys", json={"name": "k", "scopes": list(scopes)})
    assert response.status_code == 201, response.text
    token: str = response.json()["token"]
    return token


def test_missing_and_unknown_keys_are_401(app_client: TestClient) -> None:
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Bearer ss_x_y"}):
        response = app_client.get("/v1/experiments", headers=headers)
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "unauthenticated"


def test_scopes(client: TestClient) -> None:
    read, write = key(client, "read"), key(client, "write")
    as_reader = {"Authorization": f"Bearer {read}"}
    as_writer = {"Authorization": f"Bearer {write}"}
    assert client.get("/v1/experiments", headers=as_reader).status_code == 200
    denied = client.post("/v1/experiments", json={"name": "x"}, headers=as_reader)
    assert denied.status_code == 403
    assert denied.json()["error"]["details"] == {"required_scope": "write"}
    assert client.post("/v1/experiments", json={"name": "x"}, headers=as_writer).status_code == 201
    assert client.delete("/v1/experiments/x", headers=as_writer).status_code == 403
    assert client.get("/v1/keys", headers=as_writer).status_code == 403
    assert client.delete("/v1/experiments/x").status_code == 204


def test_revoked_key_stops_working(client: TestClient) -> None:
    token = key(client, "read")
    prefix = token.split("_")[1]
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/v1/experiments", headers=headers).status_code == 200
    assert client.delete(f"/v1/keys/{prefix}").json()["revoked_at"] is not None
    assert client.get("/v1/experiments", headers=headers).status_code == 401


def test_wrong_secret_with_right_prefix_is_401(client: TestClient) -> None:
    token = key(client, "admin")
    forged = token[:-4] + ("aaaa" if not token.endswith("aaaa") else "bbbb")
    response = client.get("/v1/experiments", headers={"Authorization": f"Bearer {forged}"})
    assert response.status_code == 401


def test_keys_are_stored_hashed_and_listed_without_secret(
    client: TestClient, database_url: str
) -> None:
    import sqlalchemy as sa

    token = key(client, "read")
    listed = client.get("/v1/keys").json()
    assert all("token" not in k and "secret" not in str(k) for k in listed)
    engine = sa.create_engine(database_url)
    with engine.connect() as connection:
        stored = connection.execute(sa.text("SELECT prefix, secret_sha256 FROM api_keys")).all()
    engine.dispose()
    secret = token.split("_", 2)[2]
    assert all(secret not in row.secret_sha256 for row in stored)


def test_auth_disabled_makes_everyone_admin(database_url: str) -> None:
    with TestClient(create_app(Settings(database_url=database_url, auth=False))) as client:
        assert client.post("/v1/experiments", json={"name": "open"}).status_code == 201
        assert client.delete("/v1/experiments/open").status_code == 204


def test_health_needs_no_key(app_client: TestClient) -> None:
    assert app_client.get("/healthz").json() == {"status": "ok"}
    assert app_client.get("/readyz").json() == {"status": "ready"}
    assert ADMIN_TOKEN not in app_client.get("/openapi.json").text


def test_bootstrap_key_is_safe_under_concurrent_starts(database_url: str) -> None:
    """Several API processes start at once with one SCALING_BOOTSTRAP_ADMIN_KEY: one insert
    wins, the others find it (before, a UniqueViolation stopped uvicorn)."""
    from concurrent.futures import ThreadPoolExecutor

    from service import auth
    from service.db import create_db_engine, make_session_factory, session_scope

    engine = create_db_engine(database_url, 10)
    sessions = make_session_factory(engine)
    token = "ss_boot01_" + "s" * 40
    barrier = threading.Barrier(6)

    def start(_: int) -> None:
        with session_scope(sessions) as session:
            barrier.wait()
            auth.ensure_key(session, "bootstrap admin", ["admin"], token)

    with ThreadPoolExecutor(6) as pool:
        list(pool.map(start, range(6)))
    with session_scope(sessions) as session:
        assert [k.prefix for k in auth.list_keys(session)].count("boot01") == 1
        assert auth.verify(session, token) is not None
    engine.dispose()


def test_a_changed_bootstrap_secret_refuses_to_start(database_url: str) -> None:
    first = "ss_boot02_" + "a" * 40
    with TestClient(create_app(Settings(database_url=database_url, bootstrap_admin_key=first))):
        pass
    changed = "ss_boot02_" + "b" * 40
    app = create_app(Settings(database_url=database_url, bootstrap_admin_key=changed))
    with pytest.raises(BootstrapKeyMismatchError, match="another secret"), TestClient(app):
        pass


@pytest.mark.anyio
@pytest.mark.parametrize("idempotency", [False, True])
async def test_a_bad_key_is_refused_before_any_body_is_read(
    database_url: str, idempotency: bool
) -> None:
    """An endless body behind a bogus key: 401 without reading a byte of it (before: 10
    concurrent 31 MB POSTs took a process from 194 to 466 MB before answering 401)."""
    app = create_app(Settings(database_url=database_url, bootstrap_admin_key=ADMIN_TOKEN))
    reads = 0

    async def receive() -> dict[str, object]:
        nonlocal reads
        reads += 1
        return {"type": "http.request", "body": b"x" * 65536, "more_body": True}

    sent: list[dict[str, object]] = []

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    headers = [
        (b"authorization", b"Bearer ss_bogus_secret"),
        (b"content-type", b"application/json"),
    ]
    if idempotency:
        headers.append((b"idempotency-key", b"k1"))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/experiments/exp/runs",
        "raw_path": b"/v1/experiments/exp/runs",
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
    }
    await app(scope, receive, send)  # type: ignore[arg-type]
    assert sent[0]["status"] == 401
    assert reads == 0
