"""Subscribing: the allow-list, the secret shown once and stored encrypted, the scopes."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from service.app import create_app
from service.db import session_scope
from service.store.models import IdempotencyRecord, WebhookSubscription
from tests.api.test_auth import key
from tests.conftest import ADMIN_TOKEN, make_experiment
from tests.webhooks.conftest import Receiver, subscribe, webhook_settings


def stored_count(api: TestClient) -> int:
    with session_scope(api.app.state.session_factory) as session:  # type: ignore[attr-defined]
        return session.scalar(sa.select(sa.func.count()).select_from(WebhookSubscription)) or 0


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("http://10.0.0.1:8080/hook", "not on this server's webhook allow-list"),
        ("https://127.0.0.1.evil.example/hook", "not on this server's webhook allow-list"),
        ("http://user:pw@127.0.0.1:9000/hook", "must not carry credentials"),
        ("file:///etc/passwd", "http(s)://host"),
        ("http://127.0.0.1:9000/hook#x", "#fragment"),
    ],
)
def test_a_url_off_the_allow_list_is_refused_and_nothing_stored(
    api: TestClient, url: str, says: str
) -> None:
    response = api.post("/v1/webhooks", json={"url": url, "events": ["fit.succeeded"]})
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "webhook_url_not_allowed"
    assert says in error["message"]
    assert "secret" not in response.text
    assert stored_count(api) == 0


def test_webhooks_are_off_without_an_allow_list_or_a_key(database_url: str) -> None:
    cases: list[tuple[dict[str, Any], str, str]] = [
        ({"webhook_allowed_hosts": []}, "webhook_url_not_allowed", "SCALING_WEBHOOK_ALLOWED_HOSTS"),
        ({"webhook_secret_key": None}, "webhooks_not_configured", "SCALING_WEBHOOK_SECRET_KEY"),
        ({"webhook_secret_key": "not-a-key"}, "webhooks_not_configured", "Fernet"),
    ]
    for overrides, code, says in cases:
        settings = webhook_settings(database_url, **overrides)
        with TestClient(create_app(settings)) as client:
            client.headers["Authorization"] = f"Bearer {ADMIN_TOKEN}"
            response = client.post(
                "/v1/webhooks", json={"url": "http://127.0.0.1:9/x", "events": ["fit.failed"]}
            )
            assert response.status_code == 422, response.text
            assert response.json()["error"]["code"] == code
            assert says in response.json()["error"]["message"]


def test_the_secret_is_shown_once_and_stored_encrypted(api: TestClient, receiver: Receiver) -> None:
    make_experiment(api, "exp")
    made = subscribe(api, receiver, experiment="exp", events=["fit.succeeded", "fit.succeeded"])
    assert made["secret"].startswith("whsec_") and len(made["secret"]) > 40
    assert made["events"] == ["fit.succeeded"]
    own = subscribe(api, receiver, events=["job.finished"], secret="my-own-secret-1234")
    assert own["secret"] == "my-own-secret-1234"
    for hook in (made, own):
        shown = api.get(f"/v1/webhooks/{hook['id']}")
        assert shown.status_code == 200
        assert "secret" not in shown.json()
        assert hook["secret"] not in api.get("/v1/webhooks").text
    # Created through the client's retry-safe path: the answer is not kept for replays.
    replayable = api.post(
        "/v1/webhooks",
        json={"url": receiver.url + "/z", "events": ["fit.failed"]},
        headers={"Idempotency-Key": "once"},
    ).json()["secret"]
    with session_scope(api.app.state.session_factory) as session:  # type: ignore[attr-defined]
        stored = session.scalars(sa.select(WebhookSubscription.secret_encrypted)).all()
        records = session.scalars(sa.select(IdempotencyRecord.response_body)).all()
    assert all(made["secret"] not in s and own["secret"] not in s for s in stored)
    assert all(replayable.encode() not in body for body in records)
    # Listing by experiment: its own and the global ones.
    listed = api.get("/v1/webhooks", params={"experiment": "exp"}).json()
    assert [h["id"] for h in listed] == [made["id"], own["id"], own["id"] + 1]
    assert api.get("/v1/webhooks", params={"experiment": "nope"}).status_code == 404


def test_bad_subscriptions_are_refused(api: TestClient, receiver: Receiver) -> None:
    url = receiver.url + "/x"
    for body in [
        {"url": url, "events": []},
        {"url": url, "events": ["fit.exploded"]},
        {"url": url, "events": ["fit.failed"], "secret": "short"},
        {"url": url, "events": ["fit.failed"], "watch_flops": [-1]},
    ]:
        assert api.post("/v1/webhooks", json=body).status_code == 422, body
    missing = api.post(
        "/v1/webhooks", json={"url": url, "events": ["fit.failed"], "experiment": "nope"}
    )
    assert missing.status_code == 404
    assert stored_count(api) == 0


def test_delete_and_scopes(api: TestClient, receiver: Receiver) -> None:
    hook = subscribe(api, receiver, events=["fit.succeeded"])
    reader = {"Authorization": f"Bearer {key(api, 'read')}"}
    writer = {"Authorization": f"Bearer {key(api, 'write')}"}
    body = {"url": receiver.url + "/y", "events": ["fit.failed"]}
    assert api.post("/v1/webhooks", json=body, headers=reader).status_code == 403
    assert api.get("/v1/webhooks", headers=reader).status_code == 200
    assert api.post(f"/v1/webhooks/{hook['id']}:test", headers=reader).status_code == 403
    assert api.post(f"/v1/webhooks/{hook['id']}:test", headers=writer).status_code == 202
    assert api.delete(f"/v1/webhooks/{hook['id']}", headers=writer).status_code == 403
    assert api.delete(f"/v1/webhooks/{hook['id']}").status_code == 204
    assert api.get(f"/v1/webhooks/{hook['id']}").status_code == 404
    assert api.get(f"/v1/webhooks/{hook['id']}/deliveries").status_code == 404


@pytest.fixture
def paged(api: TestClient, receiver: Receiver) -> int:
    hook = subscribe(api, receiver, events=["fit.succeeded"])
    for _ in range(5):
        api.post(f"/v1/webhooks/{hook['id']}:test")
    webhook_id: int = hook["id"]
    return webhook_id


def test_the_delivery_log_pages_newest_first(api: TestClient, paged: int) -> None:
    seen: list[int] = []
    token = None
    while True:
        params = {"limit": 2} | ({"page_token": token} if token else {})
        page = api.get(f"/v1/webhooks/{paged}/deliveries", params=params).json()
        seen += [d["id"] for d in page["items"]]
        assert all(d["status"] == "pending" and d["event"]["type"] == "ping" for d in page["items"])
        token = page["next_page_token"]
        if token is None:
            break
    assert seen == sorted(seen, reverse=True) and len(seen) == 5


def test_the_dashboard_lists_webhooks_and_their_deliveries(
    api: TestClient, receiver: Receiver
) -> None:
    make_experiment(api, "exp")
    hook = subscribe(api, receiver, experiment="exp", events=["fit.succeeded"], description="<b>x")
    api.post(f"/v1/webhooks/{hook['id']}:test")
    page = api.get("/ui/webhooks")
    assert page.status_code == 200
    assert receiver.path in page.text and "&lt;b&gt;x" in page.text
    assert "ping" in page.text and "pending" in page.text
    assert hook["secret"] not in page.text
    assert 'href="/ui/webhooks"' in api.get("/ui").text
