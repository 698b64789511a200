"""A real HTTP receiver on loopback for the webhook tests, and an app that may send to it.

The receiver checks every signature with the verification snippet of docs/integrations.md (the
code users copy), fails the attempts a test asks it to, and records what it acknowledged.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
import pytest
from cryptography.fernet import Fernet
from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import Settings
from service.webhooks.delivery import Deliverer
from tests.conftest import ADMIN_TOKEN

DOC = Path(__file__).resolve().parents[2] / "docs" / "integrations.md"
SNIPPET = re.compile(r"<!-- webhook-verify -->\n```python\n(?P<code>.*?)```", re.DOTALL)


def doc_verifier() -> Callable[[str, str, bytes], bool]:
    """`verify_signature` as docs/integrations.md shows it, executed."""
    match = SNIPPET.search(DOC.read_text())
    assert match is not None, "docs/integrations.md lost its verification snippet"
    namespace: dict[str, Any] = {}
    exec(compile(match["code"], str(DOC), "exec"), namespace)
    verify: Callable[[str, str, bytes], bool] = namespace["verify_signature"]
    return verify


@dataclass
class Received:
    path: str
    event_id: int
    event_type: str
    delivery_id: int
    body: dict[str, Any]
    signature_ok: bool
    answered: int


@dataclass
class Receiver:
    """What the loopback server does and saw; `plan` maps (path, event type) to the status
    codes of its first attempts (then 200)."""

    url: str
    verify: Callable[[str, str, bytes], bool]
    path: str = "/"  # the current test's
    secrets: dict[str, str] = field(default_factory=dict)
    plan: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    always: dict[str, int] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, path: str, headers: Any, raw: bytes) -> int:
        secret = self.secrets.get(path, "")
        ok = self.verify(secret, headers.get("Scaling-Signature", ""), raw)
        body = orjson.loads(raw)
        with self.lock:
            if not ok:
                code = 400
            elif path in self.always:
                code = self.always[path]
            else:
                codes = self.plan.get((path, body["type"]), [])
                code = codes.pop(0) if codes else 200
            self.received.append(
                Received(
                    path,
                    int(headers["Scaling-Event-Id"]),
                    headers["Scaling-Event-Type"],
                    int(headers["Scaling-Delivery-Id"]),
                    body,
                    ok,
                    code,
                )
            )
        return code

    def at(self, path: str) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.path == path]

    def acknowledged(self, path: str) -> list[int]:
        """Event ids answered 2xx at `path`, in the order they were answered."""
        return [r.event_id for r in self.at(path) if 200 <= r.answered < 300]


@pytest.fixture(scope="session")
def receiver_server() -> Iterator[Receiver]:
    state: dict[str, Receiver] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            code = state["receiver"].answer(self.path, self.headers, raw)
            self.send_response(code)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state["receiver"] = Receiver(f"http://127.0.0.1:{server.server_address[1]}", doc_verifier())
    try:
        yield state["receiver"]
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def receiver(receiver_server: Receiver, request: pytest.FixtureRequest) -> Receiver:
    """The session's receiver, with a path of its own for this test."""
    receiver_server.path = "/" + re.sub(r"\W+", "-", request.node.name)
    return receiver_server


FERNET_KEY = Fernet.generate_key().decode()


def webhook_settings(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "auth": True,
        "bootstrap_admin_key": ADMIN_TOKEN,
        "fit_runner": False,
        "refit_debounce_seconds": 0,
        "webhook_allowed_hosts": "http://127.0.0.1:*",
        "webhook_secret_key": FERNET_KEY,
        "webhook_timeout_seconds": 2,
        "webhook_lease_seconds": 5,
        "webhook_max_attempts": 3,
        "webhook_backoff_seconds": 0.05,
        "webhook_backoff_max_seconds": 0.2,
    }
    return Settings(**(values | overrides))


@pytest.fixture
def hook_settings(database_url: str) -> Settings:
    return webhook_settings(database_url)


@pytest.fixture
def api(hook_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(hook_settings)) as client:
        client.headers["Authorization"] = f"Bearer {ADMIN_TOKEN}"
        yield client


@pytest.fixture
def deliverer(api: TestClient, hook_settings: Settings) -> Iterator[Deliverer]:
    sessions = api.app.state.session_factory  # type: ignore[attr-defined]
    worker = Deliverer(sessions, hook_settings, owner="test-worker")
    yield worker
    worker.client.close()


def drain(deliverer: Deliverer, api: TestClient, webhook_id: int, timeout: float = 15) -> None:
    """Deliver until the webhook has nothing pending (retries wait out their backoff)."""
    deadline = time.monotonic() + timeout
    while True:
        deliverer.run_once()
        items = api.get(f"/v1/webhooks/{webhook_id}/deliveries").json()["items"]
        if items and all(item["status"] != "pending" for item in items):
            return
        assert time.monotonic() < deadline, f"deliveries still pending: {items}"
        time.sleep(0.02)


def subscribe(api: TestClient, receiver: Receiver, **body: Any) -> dict[str, Any]:
    """A webhook to the receiver's path for this test; the receiver learns its secret."""
    path = receiver.path
    response = api.post("/v1/webhooks", json={"url": receiver.url + path, **body})
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    receiver.secrets[path] = created["secret"]
    return created
