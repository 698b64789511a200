"""API keys: creation, hashing and verification. Keys are never stored or logged in clear.

A key reads `ss_<prefix>_<secret>`. The prefix finds the row; the secret's SHA-256 is compared in
constant time. Keys are 256-bit random, so a fast hash is enough (no password stretching needed).
"""

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from service.errors import InvalidInputError, NotFoundError
from service.store.models import ApiKey

SCOPES = ("read", "write", "admin")
KEY_PREFIX = "ss"
# Each scope implies those before it: admin can write, write can read.
_IMPLIED = {"read": {"read"}, "write": {"read", "write"}, "admin": {"read", "write", "admin"}}


@dataclass(frozen=True)
class Principal:
    """Who is calling: a key's id and name, or the anonymous dev-mode caller."""

    key_id: int | None
    name: str
    scopes: frozenset[str]

    def has(self, scope: str) -> bool:
        return scope in self.scopes

    @property
    def owner(self) -> str:
        """A stable id for per-caller records (idempotency keys)."""
        return f"key:{self.key_id}" if self.key_id is not None else "anonymous"


ANONYMOUS = Principal(key_id=None, name="anonymous (auth disabled)", scopes=frozenset(SCOPES))


def effective_scopes(scopes: list[str] | tuple[str, ...]) -> frozenset[str]:
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown:
        raise InvalidInputError(f"unknown scopes {unknown}; use {list(SCOPES)}", scopes=unknown)
    return frozenset().union(*(_IMPLIED[s] for s in scopes)) if scopes else frozenset()


def _sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _split(token: str) -> tuple[str, str] | None:
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX or not parts[1] or not parts[2]:
        return None
    return parts[1], parts[2]


def create_key(
    session: Session, name: str, scopes: list[str], token: str | None = None
) -> tuple[ApiKey, str]:
    """Store a new key; return its row and the full token (shown once, never stored)."""
    effective_scopes(scopes)
    if token is None:
        token = f"{KEY_PREFIX}_{secrets.token_hex(6)}_{secrets.token_urlsafe(32)}"
    split = _split(token)
    if split is None:
        raise InvalidInputError(f"a key must read {KEY_PREFIX}_<prefix>_<secret>")
    prefix, secret = split
    row = ApiKey(prefix=prefix, secret_sha256=_sha256(secret), name=name, scopes=",".join(scopes))
    session.add(row)
    session.flush()
    return row, token


class BootstrapKeyMismatchError(Exception):
    """SCALING_BOOTSTRAP_ADMIN_KEY names a key prefix that is stored with another secret (or
    revoked): refusing to start rather than ignore the new secret. Revoke the old key and choose
    a new prefix, or set the stored key's token again."""


def ensure_key(session: Session, name: str, scopes: list[str], token: str) -> None:
    """Create the key `token` unless a key with its prefix exists (bootstrap at start).

    Safe when several processes start at once (one insert wins, the others find it); a stored
    key with the same prefix but another secret, or revoked, raises BootstrapKeyMismatchError.
    """
    split = _split(token)
    if split is None:
        raise InvalidInputError(f"a key must read {KEY_PREFIX}_<prefix>_<secret>")
    prefix, secret = split
    row = session.scalar(sa.select(ApiKey).where(ApiKey.prefix == prefix))
    if row is None:
        try:
            with session.begin_nested():
                create_key(session, name, scopes, token)
            return
        except IntegrityError:  # another process created it at the same moment
            row = session.scalar(sa.select(ApiKey).where(ApiKey.prefix == prefix))
            assert row is not None
    if row.revoked_at is not None or not hmac.compare_digest(_sha256(secret), row.secret_sha256):
        raise BootstrapKeyMismatchError(f"{BootstrapKeyMismatchError.__doc__} (prefix {prefix!r})")


def verify(session: Session, token: str) -> Principal | None:
    """The principal for `token`, or None when it is unknown, revoked or wrong."""
    split = _split(token)
    if split is None:
        return None
    prefix, secret = split
    row = session.scalar(sa.select(ApiKey).where(ApiKey.prefix == prefix))
    if row is None or row.revoked_at is not None:
        # Hash anyway so a miss costs the same time as a wrong secret.
        hmac.compare_digest(_sha256(secret), "0" * 64)
        return None
    if not hmac.compare_digest(_sha256(secret), row.secret_sha256):
        return None
    return Principal(row.id, row.name, effective_scopes(row.scopes.split(",")))


def list_keys(session: Session) -> list[ApiKey]:
    return list(session.scalars(sa.select(ApiKey).order_by(ApiKey.id)))


def revoke_key(session: Session, prefix: str) -> ApiKey:
    row = session.scalar(sa.select(ApiKey).where(ApiKey.prefix == prefix))
    if row is None:
        raise NotFoundError(f"no API key with prefix {prefix!r}", prefix=prefix)
    if row.revoked_at is None:
        row.revoked_at = datetime.now(UTC)
    return row


class KeyCache:
    """Keys verified recently, so a hot endpoint does not query the key table on every call.

    Entries live `ttl` seconds: a key revoked through another replica stops working there within
    that time; `clear()` (called on revocation here) makes it immediate in this process. Entries
    are keyed by a SHA-256 of the token, never the token itself.
    """

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._entries: dict[str, tuple[Principal, float]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _key(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()

    def get(self, token: str) -> Principal | None:
        if self.ttl <= 0:
            return None
        with self._lock:
            entry = self._entries.get(self._key(token))
        if entry is None or entry[1] < time.monotonic():
            return None
        return entry[0]

    def put(self, token: str, principal: Principal) -> None:
        if self.ttl <= 0:
            return
        with self._lock:
            if len(self._entries) > 10_000:
                self._entries.clear()
            self._entries[self._key(token)] = (principal, time.monotonic() + self.ttl)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
