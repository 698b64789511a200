"""The signature of a delivery: HMAC-SHA256 over ``f"{timestamp}.{body}"``.

Header: ``Scaling-Signature: t=<unix seconds>,v1=<hex digest>``. The timestamp is signed with
the body, so a receiver that refuses old timestamps also refuses replays. docs/integrations.md
shows a receiver's check (tests/webhooks run that snippet against real deliveries).
"""

import hashlib
import hmac
import secrets
import time

SIGNATURE_HEADER = "Scaling-Signature"
EVENT_ID_HEADER = "Scaling-Event-Id"
EVENT_TYPE_HEADER = "Scaling-Event-Type"
DELIVERY_ID_HEADER = "Scaling-Delivery-Id"
SECRET_PREFIX = "whsec_"


def new_secret() -> str:
    """A 256-bit random signing secret."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def signature(secret: str, timestamp: int, body: bytes) -> str:
    message = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signature_header(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The value of `Scaling-Signature` for `body`, signed now unless told when."""
    t = int(time.time()) if timestamp is None else timestamp
    return f"t={t},v1={signature(secret, t, body)}"
