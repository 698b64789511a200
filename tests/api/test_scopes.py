"""Every operation's required scope: declared on its dependency, and enforced over HTTP.

read for GET (and the read-only POSTs that answer questions), write for POST/PATCH on data,
admin for keys and DELETE. Only health, readiness, metrics and the docs are public.
"""

from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from starlette.routing import BaseRoute

from service.app import create_app
from service.settings import Settings
from tests.api.test_auth import key
from tests.conftest import ADMIN_TOKEN, make_experiment

PUBLIC = {"/healthz", "/readyz", "/metrics", "/"}
# The dashboard's login, logout and stylesheet; its pages declare read or write like the API.
UI_PUBLIC = {"/ui/login", "/ui/logout", "/ui/static/style.css"}
# The API's documentation: its pages, the OpenAPI document and the pages' own scripts.
DOCS = {"/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json", "/docs-assets"}
# POSTs that only compute an answer: reading is enough.
READ_ONLY_POSTS = {
    "/v1/recommendations",
    "/v1/compare",
    "/v1/experiments/{name}/plans",  # a proposal; nothing is queued
    "/ui/experiments/{name}/recommendation",
}


def expected_scope(route: APIRoute, method: str) -> str | None:
    if route.path in PUBLIC | UI_PUBLIC | DOCS:
        return None
    if route.path.startswith("/v1/keys") or method == "DELETE":
        return "admin"
    if method == "GET" or route.path in READ_ONLY_POSTS:
        return "read"
    return "write"


def declared_scopes(dependant: Dependant) -> set[str]:
    found = set()
    scope = getattr(dependant.call, "required_scope", None)
    if scope is not None:
        found.add(scope)
    for sub in dependant.dependencies:
        found |= declared_scopes(sub)
    return found


def leaf_routes(routes: list[BaseRoute]) -> list[BaseRoute]:
    """FastAPI wraps each included router; its routes carry their full path (no include prefix)."""
    leaves: list[BaseRoute] = []
    for route in routes:
        inner = getattr(route, "original_router", None)
        leaves += leaf_routes(inner.routes) if inner is not None else [route]
    return leaves


def operations(client: TestClient) -> list[tuple[APIRoute, str]]:
    routes = [r for r in leaf_routes(client.app.routes) if isinstance(r, APIRoute)]  # type: ignore[attr-defined]
    return [(route, method) for route in routes for method in sorted(route.methods or ())]


def api_operations(client: TestClient) -> list[tuple[APIRoute, str]]:
    """Operations answering JSON errors: the dashboard's pages redirect a caller without a key to
    its login page and answer 403 as HTML instead (tests/ui checks both)."""
    return [
        (route, method) for route, method in operations(client) if not route.path.startswith("/ui")
    ]


def test_every_route_is_public_or_declares_its_scope(app_client: TestClient) -> None:
    seen = set()
    for route, method in operations(app_client):
        seen.add(route.path)
        expected = expected_scope(route, method)
        declared = declared_scopes(route.dependant)
        assert declared == ({expected} if expected else set()), (method, route.path, declared)
    other = {getattr(r, "path", None) for r in leaf_routes(app_client.app.routes)} - seen  # type: ignore[attr-defined]
    assert other <= DOCS, other
    assert seen >= PUBLIC


PATH_VALUES = {"name": "exp", "run_id": "1", "fit_id": "1", "kind": "isoflop", "prefix": "nokey"}


def concrete(path: str) -> str:
    for name, value in PATH_VALUES.items():
        path = path.replace("{" + name + "}", value)
    return path


def call(client: TestClient, method: str, path: str, headers: dict[str, str]) -> Any:
    body: dict[str, Any] = {}
    if path.endswith("runs:import"):
        headers = {**headers, "content-type": "text/csv"}
        return client.request(method, path, content=b"params,tokens,loss\n1,1,1\n", headers=headers)
    return client.request(
        method, path, json=body if method in ("POST", "PATCH") else None, headers=headers
    )


def test_each_operation_refuses_missing_key_and_missing_scope(client: TestClient) -> None:
    make_experiment(client, "exp")
    stored = client.post(
        "/v1/experiments/exp/runs", json={"runs": [{"params": 1, "tokens": 1, "loss": 1}]}
    )
    assert stored.status_code == 201
    tokens = {"read": key(client, "read"), "write": key(client, "write")}
    weaker = {"read": [], "write": ["read"], "admin": ["read", "write"]}
    checked = 0
    for route, method in api_operations(client):
        scope = expected_scope(route, method)
        path = concrete(route.path)
        anonymous = call(client, method, path, {"Authorization": ""})
        if scope is None:
            assert anonymous.status_code < 400, (method, path, anonymous.text)
            continue
        assert anonymous.status_code == 401, (method, path, anonymous.text)
        assert anonymous.json()["error"]["code"] == "unauthenticated"
        for lesser in weaker[scope]:
            denied = call(client, method, path, {"Authorization": f"Bearer {tokens[lesser]}"})
            assert denied.status_code == 403, (method, path, lesser, denied.text)
            assert denied.json()["error"]["details"] == {"required_scope": scope}
        checked += 1
    assert checked >= 20


def test_unauthenticated_caller_cannot_probe_which_experiments_exist(
    app_client: TestClient,
) -> None:
    # The experiment lookup ran before authentication: a missing experiment answered 404 to a
    # caller without a key (and the real one 401), telling them which names exist.
    for path in ("/v1/experiments/missing", "/v1/experiments/missing/runs"):
        response = app_client.get(path)
        assert response.status_code == 401, (path, response.text)
    response = app_client.post("/v1/experiments/missing/runs", json={"runs": []})
    assert response.status_code == 401, response.text


def test_cors_is_off_by_default(client: TestClient) -> None:
    preflight = client.options(
        "/v1/experiments",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
    )
    assert "access-control-allow-origin" not in preflight.headers
    plain = client.get("/v1/experiments", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in plain.headers


def test_cors_allows_only_configured_origins(database_url: str) -> None:
    settings = Settings(
        database_url=database_url,
        bootstrap_admin_key=ADMIN_TOKEN,
        fit_runner=False,
        cors_origins="https://ui.example, https://other.example",
    )
    with TestClient(create_app(settings)) as client:
        allowed = client.options(
            "/v1/experiments",
            headers={"Origin": "https://ui.example", "Access-Control-Request-Method": "GET"},
        )
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == "https://ui.example"
        denied = client.get("/v1/experiments", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in denied.headers


def test_security_headers_on_errors_too(app_client: TestClient) -> None:
    responses = [
        app_client.get("/v1/experiments"),  # 401
        app_client.get("/no/such/path"),  # 404
        app_client.post(
            "/v1/experiments", content=b"{", headers={"content-type": "application/json"}
        ),
    ]
    for response in responses:
        assert response.status_code >= 400
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["content-security-policy"] == "default-src 'none'"
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["referrer-policy"] == "no-referrer"


def test_security_headers_on_a_500(settings: Settings) -> None:
    app = create_app(settings)

    def boom() -> None:
        raise RuntimeError("boom")

    app.add_api_route("/boom", boom)
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/boom")
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal_error"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["content-security-policy"] == "default-src 'none'"
