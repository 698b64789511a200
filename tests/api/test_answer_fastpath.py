"""The GET recommendation answered before FastAPI, from the answer cache or computed as the route
computes it: the route's exact response, and every request it should not answer (key unknown or
without `read`, an unusual query or one the route refuses, an answer that fails) left to the
route, except a database outage, answered at once."""

from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from starlette.types import Message

from service import auth
from service.api.answer_fastpath import CachedAnswerMiddleware, _key_of
from service.api.routes import recommendations
from service.app import create_app
from service.fits.answers import AnswerCache, recommendation_body, recommendation_key
from service.settings import Settings
from tests.conftest import grid_runs, make_experiment
from tests.tcp_proxy import TcpProxy

PATH = "/v1/experiments/exp/recommendation"


@pytest.mark.parametrize(
    ("query", "key"),
    [
        (b"flops=1e24", recommendation_key("chinchilla", "parametric", 1e24, None, 0.9)),
        (
            b"flops=3.5E%2B22&law=kaplan&method=isoflop&max_params=7e9&confidence=0.95",
            recommendation_key("kaplan", "isoflop", 3.5e22, 7e9, 0.95),
        ),
    ],
)
def test_a_plain_query_gives_the_routes_cache_key(query: bytes, key: object) -> None:
    assert _key_of(query) == key


@pytest.mark.parametrize(
    "query",
    [
        b"",  # no flops: the route answers 422
        b"law=kaplan",
        b"flops=1e24&flops=1e23",  # repeated
        b"flops=1e24&extra=1",  # unknown parameter
        b"flops=inf",
        b"flops=-1e24",
        b"flops=1e24&confidence=",
        b"flops=0x10",
        b"flops=1_000",
    ],
)
def test_anything_unusual_is_left_to_the_route(query: bytes) -> None:
    assert _key_of(query) is None


def _scope(
    state: Any, *, path: str = PATH, token: str | None = "tok", query: bytes = b"flops=1e24"
) -> dict[str, Any]:
    headers = [] if token is None else [(b"authorization", f"Bearer {token}".encode())]
    return {
        "type": "http",
        "method": "GET",
        "path": path,
        "query_string": query,
        "headers": headers,
        "app": SimpleNamespace(state=state),
    }


async def _call(state: Any, **scope: Any) -> tuple[bool, list[Message]]:
    reached: list[bool] = []

    async def route(scope: Any, receive: Any, send: Any) -> None:
        reached.append(True)

    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    await CachedAnswerMiddleware(route)(_scope(state, **scope), receive, send)
    return bool(reached), sent


def _state(scopes: frozenset[str], *, auth_on: bool = True) -> Any:
    answers = AnswerCache(60)
    answers.put("exp", recommendation_key("chinchilla", "parametric", 1e24, None, 0.9), b"{}")
    keys = auth.KeyCache(60)
    keys.put("tok", auth.Principal(key_id=7, name="k", scopes=scopes))
    return SimpleNamespace(
        settings=SimpleNamespace(auth=auth_on), key_cache=keys, answer_cache=answers
    )


@pytest.mark.anyio
async def test_a_hit_is_answered_without_the_route() -> None:
    reached, sent = await _call(_state(frozenset({"read"})))
    assert not reached
    assert sent[0]["status"] == 200
    assert sent[0]["headers"] == [(b"content-length", b"2"), (b"content-type", b"application/json")]
    assert sent[1]["body"] == b"{}"


@pytest.mark.anyio
@pytest.mark.parametrize(
    "change",
    [
        {"token": None},  # no key: the route answers 401
        {"token": "other"},  # a key not in the key cache: the route verifies it
        {"path": "/v1/experiments/exp/frontier"},
        {"query": b"flops=1e24&confidence=0.3"},  # the route refuses it (422)
        {"query": b"flops=1e24&law=newton"},
        {"query": b"flops=0"},
        {"path": "/v1/experiments/Not A Slug/recommendation"},
        # Not cached, and computing it fails (this state has no database): the route answers.
        {"path": "/v1/experiments/other/recommendation"},
    ],
)
async def test_misses_go_to_the_route(change: dict[str, Any]) -> None:
    reached, sent = await _call(_state(frozenset({"read"})), **change)
    assert reached and not sent


@pytest.mark.anyio
async def test_a_key_without_read_goes_to_the_route() -> None:
    reached, _ = await _call(_state(frozenset({"jobs"})))
    assert reached


@pytest.mark.anyio
async def test_without_auth_everyone_reads() -> None:
    reached, _ = await _call(_state(frozenset(), auth_on=False), token=None)
    assert not reached


def test_the_fast_answer_is_the_routes_answer(client: TestClient, monkeypatch: Any) -> None:
    make_experiment(client)
    assert client.post("/v1/experiments/exp/runs", json={"runs": grid_runs()}).status_code == 201
    assert client.post("/v1/experiments/exp/fits", json={"bootstrap": 20}).status_code == 201
    route_calls = []

    async def counted(*args: Any, **kwargs: Any) -> bytes:
        route_calls.append(args)
        return await recommendation_body(*args, **kwargs)

    monkeypatch.setattr(recommendations, "recommendation_body", counted)
    first = client.get(PATH, params={"flops": "1e21"})  # computed before the route
    again = client.get(PATH, params={"flops": "1e21"})  # from the answer cache
    # An unusual spelling of the same question reaches the route, which answers alike.
    routed = client.get(PATH, params={"flops": "1e21", "x": "1"})
    assert len(route_calls) == 1
    assert first.status_code == again.status_code == routed.status_code == 200
    assert first.content == again.content == routed.content
    for header in ("content-type", "content-length", "cache-control", "x-content-type-options"):
        assert first.headers[header] == routed.headers[header] == again.headers[header]
    assert first.headers["x-request-id"] != routed.headers["x-request-id"]
    other = client.get(PATH, params={"flops": "2e21"})  # not cached: computed before the route
    assert other.status_code == 200 and other.json()["flops"] == pytest.approx(2e21)
    assert len(route_calls) == 1

    # What the route refuses or cannot answer, it answers itself, with its errors.
    bad_key = client.get(PATH, params={"flops": "1e21"}, headers={"Authorization": "Bearer ss_x_y"})
    assert bad_key.status_code == 401
    refused = client.get(PATH, params={"flops": "1e21", "confidence": "0.3"})
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "validation_error"
    unknown = client.get("/v1/experiments/expp/recommendation", params={"flops": "1e21"})
    assert unknown.status_code == 404
    assert "did you mean 'exp'?" in unknown.json()["error"]["message"]
    assert len(route_calls) == 2  # only the unknown experiment reached the route's handler


def test_a_database_outage_is_answered_once_not_waited_for_twice(
    postgres_template: str, monkeypatch: Any
) -> None:
    upstream = sa.make_url(postgres_template)
    proxy = TcpProxy(upstream.host or "127.0.0.1", upstream.port or 5432)
    proxy.start()
    url = upstream.set(port=proxy.port).render_as_string(hide_password=False)
    settings = Settings(database_url=url, auth=False, answer_cache_seconds=0, retry_after_seconds=7)
    route_calls = []

    async def counted(*args: Any, **kwargs: Any) -> bytes:
        route_calls.append(args)
        return await recommendation_body(*args, **kwargs)

    monkeypatch.setattr(recommendations, "recommendation_body", counted)
    try:
        with TestClient(create_app(settings)) as client:
            make_experiment(client, "down")
            posted = client.post("/v1/experiments/down/runs", json={"runs": grid_runs()})
            assert posted.status_code == 201, posted.text
            fitted = client.post("/v1/experiments/down/fits", json={"bootstrap": 20})
            assert fitted.status_code == 201, fitted.text
            query = {"flops": "1e21"}
            assert client.get("/v1/experiments/down/recommendation", params=query).is_success
            proxy.cut()
            down = client.get("/v1/experiments/down/recommendation", params=query)
            assert down.status_code == 503, down.text
            assert down.headers["retry-after"] == "7"
            assert down.json()["error"]["code"] == "database_unavailable"
            assert route_calls == []  # answered before the route, which would have retried
            proxy.restore()
            assert client.get("/v1/experiments/down/recommendation", params=query).is_success
            assert route_calls == []
    finally:
        proxy.cut()
