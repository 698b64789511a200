"""Sending the outbox: claim due deliveries, POST them signed, record the answer, back off.

A delivery is at least once: a worker that crashes after the receiver answered but before the
answer is recorded leaves its lease to run out, and the delivery is sent again; receivers
deduplicate on `Scaling-Event-Id`. Redirects are not followed (the allow-list names the target).
"""

import os
import socket
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import structlog
from sqlalchemy.orm import Session, sessionmaker

from service import __version__
from service.db import session_scope
from service.errors import ServiceError
from service.settings import Settings
from service.store import webhooks as store
from service.store.models import WebhookDelivery, WebhookEvent
from service.webhooks import signing
from service.webhooks.allowlist import check_url
from service.webhooks.secrets import SecretBox

log = structlog.get_logger(__name__)
# Deliveries sent at once by one worker (each to a different subscription).
CONCURRENCY = 8
MAX_ERROR_CHARS = 500


def event_data(event: WebhookEvent) -> dict[str, Any]:
    """The event's data as it was emitted, whatever the backend stored."""
    data: dict[str, Any] = _as_floats(event.data)
    return data


def _as_floats(value: Any) -> Any:
    # PostgreSQL's JSONB stores 1e21 as the integer 1000000000000000000000 and hands it back so;
    # FLOP counts are floats, and JSON integers past 2**53 are not portable (nor can orjson
    # write those past 2**64).
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 2**53:
        return float(value)
    if isinstance(value, dict):
        return {key: _as_floats(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_as_floats(item) for item in value]
    return value


def event_body(event: WebhookEvent) -> bytes:
    """What a delivery POSTs: the event as JSON."""
    return orjson.dumps(
        {
            "id": event.id,
            "type": event.type,
            "created_at": event.created_at.isoformat(),
            "experiment": event.experiment,
            "data": event_data(event),
        }
    )


def backoff(settings: Settings, attempts: int) -> timedelta:
    """The wait after the `attempts`-th failed attempt: doubling from the base, capped."""
    seconds = settings.webhook_backoff_seconds * 2.0 ** (attempts - 1)
    return timedelta(seconds=min(seconds, settings.webhook_backoff_max_seconds))


@dataclass(frozen=True)
class Prepared:
    url: str
    headers: dict[str, str]
    body: bytes
    attempts: int


class Deliverer:
    """Every worker may run one; the guarded claim gives each delivery to one at a time."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        settings: Settings,
        *,
        owner: str | None = None,
        transport: httpx.BaseTransport | None = None,
        poll_seconds: float = 1.0,
    ) -> None:
        self.sessions = session_factory
        self.settings = settings
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.poll_seconds = poll_seconds
        self.client = httpx.Client(
            timeout=settings.webhook_timeout_seconds,
            follow_redirects=False,
            transport=transport,
            headers={"User-Agent": f"scaling-service/{__version__} webhooks"},
        )
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- the loop --------------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="webhooks", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 15.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self.client.close()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                sent = self.run_once()
            except Exception as exc:  # a database outage must not kill the thread
                log.warning("webhooks_unavailable", error=f"{type(exc).__name__}: {exc}")
                sent = 0
            if not sent:
                self._stop.wait(self.poll_seconds)

    def run_once(self, limit: int = CONCURRENCY) -> int:
        """Claim up to `limit` due deliveries and send them, at once; returns how many."""
        if self.settings.webhook_secret_key is None:
            return 0  # nothing can be signed; subscriptions are refused as well
        lease = timedelta(seconds=self.settings.webhook_lease_seconds)
        with session_scope(self.sessions) as session:
            claimed = store.claim_due(session, self.owner, lease, datetime.now(UTC), limit)
        if len(claimed) == 1:
            self.deliver(claimed[0])
        elif claimed:
            with ThreadPoolExecutor(min(len(claimed), CONCURRENCY)) as pool:
                list(pool.map(self.deliver, claimed))
        return len(claimed)

    # -- one delivery ----------------------------------------------------------------------------

    def _prepare(self, session: Session, delivery_id: int) -> Prepared:
        delivery = session.get(WebhookDelivery, delivery_id)
        assert delivery is not None
        subscription = store.get_subscription(session, delivery.subscription_id)
        # The allow-list may have changed since the subscription was made.
        check_url(subscription.url, self.settings.webhook_allowed_hosts)
        secret = SecretBox(self.settings.webhook_secret_key).decrypt(subscription.secret_encrypted)
        body = event_body(delivery.event)
        headers = {
            "Content-Type": "application/json",
            signing.SIGNATURE_HEADER: signing.signature_header(secret, body),
            signing.EVENT_ID_HEADER: str(delivery.event_id),
            signing.EVENT_TYPE_HEADER: delivery.event.type,
            signing.DELIVERY_ID_HEADER: str(delivery.id),
        }
        return Prepared(subscription.url, headers, body, delivery.attempts)

    def deliver(self, delivery_id: int) -> None:
        """POST one claimed delivery and record what came of it."""
        try:
            with session_scope(self.sessions) as session:
                prepared = self._prepare(session, delivery_id)
        except ServiceError as exc:  # not allowed any more, or the secret does not decrypt
            self._settle(delivery_id, store.Attempt(False, None, exc.message, _now()), give_up=True)
            return
        attempt = self._post(prepared)
        give_up = prepared.attempts + 1 >= self.settings.webhook_max_attempts
        self._settle(delivery_id, attempt, give_up=give_up, attempts=prepared.attempts + 1)

    def _post(self, prepared: Prepared) -> store.Attempt:
        try:
            # Streamed and not read: a receiver's answer body is neither needed nor trusted.
            with self.client.stream(
                "POST", prepared.url, content=prepared.body, headers=prepared.headers
            ) as response:
                code = response.status_code
        except httpx.HTTPError as exc:
            return store.Attempt(False, None, _error(f"{type(exc).__name__}: {exc}"), _now())
        if 200 <= code < 300:
            return store.Attempt(True, code, None, _now())
        reason = "redirects are not followed" if 300 <= code < 400 else f"HTTP {code}"
        return store.Attempt(False, code, reason, _now())

    def _settle(
        self, delivery_id: int, attempt: store.Attempt, *, give_up: bool, attempts: int = 1
    ) -> None:
        retry_at = None if give_up else attempt.at + backoff(self.settings, attempts)
        with session_scope(self.sessions) as session:
            kept = store.settle(session, delivery_id, self.owner, attempt, retry_at=retry_at)
        if not kept:
            log.warning("webhook_lease_lost", delivery=delivery_id)
        elif attempt.succeeded:
            log.info("webhook_delivered", delivery=delivery_id, code=attempt.response_code)
        else:
            log.warning(
                "webhook_attempt_failed",
                delivery=delivery_id,
                code=attempt.response_code,
                error=attempt.error,
                gave_up=give_up,
            )


def _now() -> datetime:
    return datetime.now(UTC)


def _error(message: str) -> str:
    return message if len(message) <= MAX_ERROR_CHARS else message[: MAX_ERROR_CHARS - 1] + "…"
