"""`Idempotency-Key` on POST: the first response is stored and replayed for retries.

A retry with the same key, path and body gets the stored status and body back with the header
`Idempotent-Replayed: true`; the same key with another request is refused (422). Keys belong to
the authenticated caller (its API key's id, or anonymous in dev mode): a request whose key is
unknown or revoked is passed on untouched (the route answers 401) and never replays anything.

The key is claimed before the work: an "in progress" record (status 0) is inserted first, unique
per caller and key, so a concurrent duplicate gets 409 `idempotency_in_progress` with Retry-After
instead of a second execution. Server errors (5xx) and auth failures release the claim, so they
can be retried. Responses that carry a secret (new API keys, new webhooks) are never stored, so
never replayed.
"""

import hashlib
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
import structlog
from anyio import to_thread
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.orm import Session, sessionmaker
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.api.caller import principal_of
from service.api.errors import exception_response
from service.db import session_scope
from service.errors import (
    DatabaseUnavailableError,
    IdempotencyInProgressError,
    IdempotencyKeyReusedError,
    InvalidInputError,
    PayloadTooLargeError,
    ServiceBusyError,
    ServiceError,
)
from service.store.models import IdempotencyRecord

log = structlog.get_logger(__name__)

HEADER = b"idempotency-key"
MAX_KEY_LENGTH = 200
_NOT_STORED = {401, 403, 408, 429}
# Responses that hold a secret shown once: answered, never stored.
# (a new webhook's signing secret; its pings too, by prefix, which costs nothing)
SECRET_PATHS = ("/v1/keys", "/v1/webhooks")
IN_PROGRESS = 0
# A claim this old belongs to a request that died with its process: the key may be used again.
ABANDONED_AFTER = timedelta(minutes=15)


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
            message = f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters"
            await self._refuse(scope, receive, send, InvalidInputError(message))
            return
        # Who is asking, before the body is read: a bogus key never makes the server buffer it.
        try:
            principal = await principal_of(scope)
        except (OperationalError, PoolTimeoutError) as exc:
            await self._unavailable(scope, receive, send, exc)
            return
        if principal is None:  # unknown or revoked key: the route answers 401; nothing replays
            await self.app(scope, receive, send)
            return
        try:
            body = await read_body(receive, self.max_body)
        # The body limit's own counter may stop the read first (a chunked body has no length).
        except (BodyTooLargeError, PayloadTooLargeError):
            too_large = PayloadTooLargeError(limit_bytes=self.max_body)
            await self._refuse(scope, receive, send, too_large)
            return
        owner, key_text = principal.owner, key.decode("latin-1")
        digest = hashlib.sha256(
            b"\0".join([scope["path"].encode(), scope.get("query_string", b""), body])
        ).hexdigest()
        try:
            record = await to_thread.run_sync(self._claim, owner, key_text, digest)
        except (OperationalError, PoolTimeoutError) as exc:
            await self._unavailable(scope, receive, send, exc)
            return
        if record is not None:
            await self._answer_existing(record, digest, key_text, scope, receive, send)
            return

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

        try:
            await self.app(scope, _replaying(body, receive), capture_send)
        finally:
            keep = (
                0 < status < 500
                and status not in _NOT_STORED
                and not scope["path"].startswith(SECRET_PATHS)
            )
            await to_thread.run_sync(
                self._finish, owner, key_text, status if keep else None, content_type, chunks
            )

    @staticmethod
    async def _refuse(scope: Scope, receive: Receive, send: Send, error: ServiceError) -> None:
        """What the error handlers answer (this runs outside them)."""
        retry_after = scope["app"].state.settings.retry_after_seconds
        await exception_response(error, retry_after)(scope, receive, send)

    @classmethod
    async def _unavailable(cls, scope: Scope, receive: Receive, send: Send, exc: Exception) -> None:
        """429 busy when every pooled connection is in use, 503 when the database is down."""
        busy = isinstance(exc, PoolTimeoutError)
        error = ServiceBusyError() if busy else DatabaseUnavailableError()
        await cls._refuse(scope, receive, send, error)

    async def _answer_existing(
        self,
        record: IdempotencyRecord,
        digest: str,
        key_text: str,
        scope: Scope,
        receive: Receive,
        send: Send,
    ) -> None:
        if record.request_sha256 != digest:
            reused = IdempotencyKeyReusedError(idempotency_key=key_text)
            await self._refuse(scope, receive, send, reused)
            return
        if record.status_code == IN_PROGRESS:
            busy = IdempotencyInProgressError(idempotency_key=key_text)
            await self._refuse(scope, receive, send, busy)
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

    def _claim(self, owner: str, key: str, digest: str) -> IdempotencyRecord | None:
        """Insert an in-progress record for (owner, key) and return None, or return the record
        another request holds (finished, in progress, or for another request)."""
        try:
            with session_scope(self.session_factory) as session:
                session.add(
                    IdempotencyRecord(
                        owner=owner,
                        key=key,
                        request_sha256=digest,
                        status_code=IN_PROGRESS,
                        response_body=b"",
                        content_type="",
                    )
                )
            return None
        except IntegrityError:
            pass
        with session_scope(self.session_factory) as session:
            record = session.get(IdempotencyRecord, (owner, key))
            if record is None:  # released between the two statements: claim it now
                return self._claim(owner, key, digest)
            abandoned = datetime.now(UTC) - record.created_at > ABANDONED_AFTER
            if record.status_code == IN_PROGRESS and abandoned:
                taken = session.execute(
                    sa.update(IdempotencyRecord)
                    .where(
                        IdempotencyRecord.owner == owner,
                        IdempotencyRecord.key == key,
                        IdempotencyRecord.created_at == record.created_at,
                    )
                    .values(request_sha256=digest, created_at=datetime.now(UTC))
                )
                assert isinstance(taken, sa.CursorResult)  # an UPDATE's result counts its rows
                if taken.rowcount == 1:
                    return None
            session.expunge(record)
            return record

    def _finish(
        self, owner: str, key: str, status: int | None, content_type: str, chunks: list[bytes]
    ) -> None:
        """Store the answer on the claim, or release the claim (status None) for a retry."""
        try:
            with session_scope(self.session_factory) as session:
                where = (IdempotencyRecord.owner == owner, IdempotencyRecord.key == key)
                if status is None:
                    session.execute(sa.delete(IdempotencyRecord).where(*where))
                else:
                    session.execute(
                        sa.update(IdempotencyRecord)
                        .where(*where)
                        .values(
                            status_code=status,
                            content_type=content_type,
                            response_body=b"".join(chunks),
                        )
                    )
        except (OperationalError, PoolTimeoutError):
            # The answer has been sent; a claim left behind is abandoned after ABANDONED_AFTER,
            # and the writes behind these POSTs (run_key, unique names) make a rerun safe.
            log.warning("idempotency_record_not_stored", reason="database unavailable")


def _replaying(body: bytes, receive: Receive) -> Receive:
    """A receive that hands the app the body already read, then the connection's messages."""
    replayed = False

    async def replay_receive() -> Message:
        nonlocal replayed
        if replayed:
            return await receive()
        replayed = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay_receive
