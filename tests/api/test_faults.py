"""Errors the infrastructure causes: database outage, oversized bodies, schema not at head."""

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from service.app import create_app
from service.errors import SchemaNotAtHeadError
from service.settings import Settings
from tests.conftest import ADMIN_TOKEN, create_postgres_database, drop_postgres_database
from tests.tcp_proxy import TcpProxy


def test_database_outage_is_503_then_recovers(postgres_template: str) -> None:
    upstream = sa.make_url(postgres_template)
    proxy = TcpProxy(upstream.host or "127.0.0.1", upstream.port or 5432)
    proxy.start()
    url = upstream.set(port=proxy.port).render_as_string(hide_password=False)
    settings = Settings(database_url=url, auth=False, retry_after_seconds=7)
    try:
        with TestClient(create_app(settings)) as client:
            assert client.get("/v1/experiments").status_code == 200
            proxy.cut()
            down = client.get("/v1/experiments")
            assert down.status_code == 503
            assert down.headers["retry-after"] == "7"
            assert down.json()["error"]["code"] == "database_unavailable"
            assert client.get("/readyz").status_code == 503
            assert client.get("/healthz").status_code == 200
            proxy.restore()
            assert client.get("/v1/experiments").status_code == 200
            assert client.get("/readyz").status_code == 200
    finally:
        proxy.cut()


def test_body_over_limit_is_413(database_url: str) -> None:
    settings = Settings(database_url=database_url, auth=False, max_body_bytes=2048)
    with TestClient(create_app(settings)) as client:
        client.post("/v1/experiments", json={"name": "exp"})
        runs = [{"params": 1, "tokens": 1, "loss": 1}] * 100
        response = client.post("/v1/experiments/exp/runs", json={"runs": runs})
        assert response.status_code == 413
        assert response.json()["error"]["details"] == {"limit_bytes": 2048}
        keyed = client.post(
            "/v1/experiments/exp/runs", json={"runs": runs}, headers={"Idempotency-Key": "k"}
        )
        assert keyed.status_code == 413
        assert client.get("/v1/experiments/exp").json()["run_count"] == 0


def test_app_refuses_to_start_below_head() -> None:
    url = create_postgres_database("scaling_empty")
    try:
        app = create_app(Settings(database_url=url, bootstrap_admin_key=ADMIN_TOKEN))
        with pytest.raises(SchemaNotAtHeadError, match="scaling-service migrate"), TestClient(app):
            pass
    finally:
        drop_postgres_database(url)


def test_security_headers(client: TestClient) -> None:
    response = client.get("/v1/experiments")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert "access-control-allow-origin" not in response.headers
