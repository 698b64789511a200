"""Retries: 503 and connection errors are retried (Retry-After honoured, bounded) with the same
Idempotency-Key; 4xx are not. Against httpx.MockTransport, and the real app losing its database."""

import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from service.client import (
    NO_RETRY,
    ApiError,
    NotFoundError,
    RetryPolicy,
    ScalingClient,
    ServiceUnavailableError,
)
from service.client.errors import parse_retry_after
from service.testing import live_server
from tests.client.conftest import server_settings
from tests.conftest import ADMIN_TOKEN
from tests.tcp_proxy import TcpProxy

EXPERIMENT: dict[str, Any] = {
    "name": "exp",
    "description": "",
    "param_convention": "total",
    "flops_formula": "6ND",
    "metadata": {},
    "corpus_hash": None,
    "tokenizer_hash": None,
    "run_count": 0,
    "created_at": "2026-11-27T00:00:00Z",
    "updated_at": "2026-11-27T00:00:00Z",
}
UNAVAILABLE = {"error": {"code": "database_unavailable", "message": "retry", "details": None}}
Handler = Callable[[httpx.Request], httpx.Response]


def scripted(*responses: httpx.Response | Exception) -> tuple[Handler, list[httpx.Request]]:
    """A transport handler answering with `responses` in turn (the last one repeats)."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = responses[min(len(seen), len(responses)) - 1]
        if isinstance(answer, Exception):
            raise answer
        return answer

    return handler, seen


def unavailable(retry_after: str | None = "0") -> httpx.Response:
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    return httpx.Response(503, json=UNAVAILABLE, headers=headers)


def client(handler: Handler, retry: RetryPolicy | None = None) -> ScalingClient:
    return ScalingClient(
        "http://scaling.test",
        "ss_test",
        transport=httpx.MockTransport(handler),
        retry=retry or RetryPolicy(attempts=4, backoff=0.001, max_wait=0.05),
    )


def test_503_is_retried_with_the_same_idempotency_key() -> None:
    handler, seen = scripted(unavailable(), unavailable(), httpx.Response(201, json=EXPERIMENT))
    created = client(handler).create_experiment("exp")
    assert created.name == "exp"
    assert len(seen) == 3
    keys = {request.headers["idempotency-key"] for request in seen}
    assert len(keys) == 1
    assert seen[0].headers["authorization"] == "Bearer ss_test"


def test_each_call_gets_its_own_key_and_a_given_key_is_used() -> None:
    handler, seen = scripted(httpx.Response(201, json=EXPERIMENT))
    api = client(handler)
    api.create_experiment("exp")
    api.create_experiment("exp")
    api.create_experiment("exp", idempotency_key="mine")
    keys = [request.headers["idempotency-key"] for request in seen]
    assert keys[0] != keys[1]
    assert keys[2] == "mine"


def test_reads_carry_no_idempotency_key() -> None:
    handler, seen = scripted(httpx.Response(200, json={"items": [], "next_page_token": None}))
    client(handler).list_experiments()
    assert "idempotency-key" not in seen[0].headers


def test_connection_errors_are_retried() -> None:
    handler, seen = scripted(
        httpx.ConnectError("refused"),
        httpx.ReadTimeout("slow"),
        httpx.Response(200, json=EXPERIMENT),
    )
    assert client(handler).get_experiment("exp").name == "exp"
    assert len(seen) == 3


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 413, 422])
def test_4xx_is_not_retried(status: int) -> None:
    body = {"error": {"code": "nope", "message": "no", "details": {"field": "x"}}}
    handler, seen = scripted(httpx.Response(status, json=body))
    with pytest.raises(ApiError) as raised:
        client(handler).get_experiment("exp")
    assert len(seen) == 1
    assert raised.value.status == status
    assert raised.value.details == {"field": "x"}
    if status == 404:
        assert isinstance(raised.value, NotFoundError)


def test_retries_are_bounded_and_raise_the_last_error() -> None:
    handler, seen = scripted(unavailable())
    with pytest.raises(ServiceUnavailableError) as raised:
        client(handler).get_experiment("exp")
    assert len(seen) == 4
    assert raised.value.code == "database_unavailable"
    handler, seen = scripted(unavailable())
    with pytest.raises(ServiceUnavailableError):
        client(handler, NO_RETRY).get_experiment("exp")
    assert len(seen) == 1


def test_retry_after_is_honoured_up_to_max_wait() -> None:
    handler, _ = scripted(unavailable("0.3"), httpx.Response(200, json=EXPERIMENT))
    started = time.monotonic()
    client(handler).get_experiment("exp")
    waited = time.monotonic() - started
    assert waited >= 0.05  # capped by max_wait=0.05, not the server's 0.3
    assert waited < 0.3
    handler, _ = scripted(unavailable("0.2"), httpx.Response(200, json=EXPERIMENT))
    started = time.monotonic()
    client(handler, RetryPolicy(attempts=2, backoff=0.001, max_wait=5)).get_experiment("exp")
    assert time.monotonic() - started >= 0.2
    handler, _ = scripted(unavailable("3600"), httpx.Response(200, json=EXPERIMENT))
    started = time.monotonic()
    client(handler).get_experiment("exp")
    assert time.monotonic() - started < 1


def test_retry_after_parsing() -> None:
    assert parse_retry_after("7") == 7
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0


def test_non_json_errors_still_map() -> None:
    handler, _ = scripted(httpx.Response(502, text="bad gateway"))
    with pytest.raises(ServiceUnavailableError) as raised:
        client(handler, NO_RETRY).get_experiment("exp")
    assert raised.value.code == "http_502"
    assert raised.value.message == "bad gateway"


def test_database_outage_is_ridden_out(postgres_template: str) -> None:
    """The real app on PostgreSQL behind a proxy that is cut, then restored while the client
    retries: the calls succeed, and a create retried through the outage creates once."""
    engine = sa.create_engine(postgres_template)
    with engine.begin() as connection:
        connection.execute(sa.text("TRUNCATE experiments, idempotency_records CASCADE"))
    engine.dispose()
    upstream = sa.make_url(postgres_template)
    proxy = TcpProxy(upstream.host or "127.0.0.1", upstream.port or 5432)
    proxy.start()
    url = upstream.set(port=proxy.port).render_as_string(hide_password=False)
    settings = server_settings(url).model_copy(update={"fit_runner": False})
    retry = RetryPolicy(attempts=20, backoff=0.05, max_wait=0.1)
    try:
        with live_server(settings) as base, ScalingClient(base, ADMIN_TOKEN, retry=retry) as api:
            assert api.list_experiments().items == []
            proxy.cut()
            with pytest.raises(ServiceUnavailableError) as down:
                ScalingClient(base, ADMIN_TOKEN, retry=NO_RETRY).list_experiments()
            assert down.value.retry_after == settings.retry_after_seconds
            threading.Timer(0.5, proxy.restore).start()
            created = api.create_experiment("outage")
            assert created.name == "outage"
            assert [e.name for e in api.list_experiments().items] == ["outage"]
    finally:
        proxy.cut()


def test_a_request_still_in_progress_is_retried_for_its_answer() -> None:
    busy = {"error": {"code": "idempotency_in_progress", "message": "wait", "details": None}}
    handler, seen = scripted(
        httpx.Response(409, json=busy, headers={"Retry-After": "0"}),
        httpx.Response(201, json=EXPERIMENT, headers={"Idempotent-Replayed": "true"}),
    )
    assert client(handler).create_experiment("exp").name == "exp"
    assert len(seen) == 2
    assert len({request.headers["idempotency-key"] for request in seen}) == 1
    pool = {"error": {"code": "busy", "message": "wait", "details": None}}
    busy_then_ok, seen_busy = scripted(
        httpx.Response(429, json=pool, headers={"Retry-After": "0"}),
        httpx.Response(201, json=EXPERIMENT),
    )
    assert client(busy_then_ok).create_experiment("exp").name == "exp"
    assert len(seen_busy) == 2
    conflict = {"error": {"code": "run_key_conflict", "message": "no", "details": None}}
    other, seen_other = scripted(httpx.Response(409, json=conflict))
    with pytest.raises(ApiError):
        client(other).create_experiment("exp")
    assert len(seen_other) == 1  # other conflicts are answers, not retried
