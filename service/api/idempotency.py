"""`Idempotency-Key` on POST: the first response is stored and replayed for retries.

A retry with the same key, path and body gets the stored status and body back with the header
`Idempotent-Replayed: true`; the same key with another request is refused (422). Keys belong to the
caller (the API key, or anonymous in dev mode). Server errors (5xx) and auth failures are not
stored, so they can be retried.
"""

import hashlib
import json

import sqlalchemy as sa
import structlog
from anyio import to_thread
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.orm import Session, sessionmaker
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.db import session_scope
from service.errors import (
    DatabaseUnavailableError,
    IdempotencyKeyReusedError,
    InvalidInputError,
    PayloadTooLargeError,
)
from service.store.models import IdempotencyRecord

log = structlog.get_logger(__name__)

HEADER = b"idempotency-key"
MAX_KEY_LENGTH = 200
_NOT_STORED = {401, 403, 408, 429}


def _owner(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"authorization":
            return "token:" + hashlib.sha256(value).hexdigest()[:32]
    return "anonymous"


class BodyTooLargeError(Exception):
    pass


async def read_body(receive: Receive, limit: int) -> bytes:
    chunks, size, more = [], 0, True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLargeError
        chunks.append(chunk)
        more = message.get("more_body", False)
    return b"".join(chunks)


def _error(status: int, code: str, message: str, details: object = None) -> tuple[int, bytes]:
    body = {"error": {"code": code, "message": message, "details": details}}
    return status, json.dumps(body).encode()


async def _send_json(
    send: Send, status: int, body: bytes, extra: list[tuple[bytes, bytes]]
) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers + extra})
    await send({"type": "http.response.body", "body": body})


class IdempotencyMiddleware:
    """Replays stored responses; also enforces the body limit for the POSTs it buffers."""

    def __init__(self, app: ASGIApp, session_factory: sessionmaker[Session], max_body: int) -> None:
        self.app = app
        self.session_factory = session_factory
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        key = dict(scope["headers"]).get(HEADER)
        if key is None:
            await self.app(scope, receive, send)
            return
        if not key or len(key) > MAX_KEY_LENGTH:
            await _send_json(
                send,
                *_error(
                    422,
                    InvalidInputError.code,
                    f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters",
                ),
                [],
            )
            return
        try:
            body = await read_body(receive, self.max_body)
        except BodyTooLargeError:
            error = PayloadTooLargeError(limit_bytes=self.max_body)
            await _send_json(send, *_error(413, error.code, error.message, error.details), [])
            return
        owner, key_text = _owner(scope), key.decode("latin-1")
        digest = hashlib.sha256(
            b"\0".join([scope["path"].encode(), scope.get("query_string", b""), body])
        ).hexdigest()
        try:
            record = await to_thread.run_sync(self._load, owner, key_text)
        except (OperationalError, PoolTimeoutError):
            # What the error handlers answer for an unreachable database; this middleware runs
            # outside them.
            down = DatabaseUnavailableError()
            retry_after = str(scope["app"].state.settings.retry_after_seconds).encode()
            await _send_json(
                send, *_error(503, down.code, down.message), [(b"retry-after", retry_after)]
            )
            return
        if record is not None:
            if record.request_sha256 != digest:
                reused = IdempotencyKeyReusedError(idempotency_key=key_text)
                await _send_json(
                    send, *_error(422, reused.code, reused.message, reused.details), []
                )
                return
            headers = [
                (b"content-type", record.content_type.encode()),
                (b"content-length", str(len(record.response_body)).encode()),
                (b"idempotent-replayed", b"true"),
            ]
            await send(
                {"type": "http.response.start", "status": record.status_code, "headers": headers}
            )
            await send({"type": "http.response.body", "body": record.response_body})
            return

        replayed = False

        async def replay_receive() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        status, content_type, chunks = 0, "application/json", []

        async def capture_send(message: Message) -> None:
            nonlocal status, content_type
            if message["type"] == "http.response.start":
                status = message["status"]
                for name, value in message.get("headers", []):
                    if name.lower() == b"content-type":
                        content_type = value.decode("latin-1")
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
            await send(message)

        await self.app(scope, replay_receive, capture_send)
        if status < 500 and status not in _NOT_STORED:
            await to_thread.run_sync(
                self._store, owner, key_text, digest, status, content_type, b"".join(chunks)
            )

    def _load(self, owner: str, key: str) -> IdempotencyRecord | None:
        with session_scope(self.session_factory) as session:
            return session.scalar(
                sa.select(IdempotencyRecord).where(
                    IdempotencyRecord.owner == owner, IdempotencyRecord.key == key
                )
            )

    def _store(
        self, owner: str, key: str, digest: str, status: int, content_type: str, body: bytes
    ) -> None:
        record = IdempotencyRecord(
            owner=owner,
            key=key,
            request_sha256=digest,
            status_code=status,
            response_body=body,
            content_type=content_type,
        )
        try:
            with session_scope(self.session_factory) as session:
                session.add(record)
        except IntegrityError:
            pass  # a concurrent request with the same key stored its response first
        except (OperationalError, PoolTimeoutError):
            # The answer has been sent; unrecorded, a retry with this key runs the request again,
            # which the writes behind these POSTs (run_key, unique names) make safe.
            log.warning("idempotency_record_not_stored", reason="database unavailable")
