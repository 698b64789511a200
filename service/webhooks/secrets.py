"""Webhook signing secrets at rest: encrypted with the operator's Fernet key(s).

HMAC needs the secret itself, so it cannot be hashed like an API key; it is encrypted with
SCALING_WEBHOOK_SECRET_KEY (several keys, newest first, rotate: new secrets use the first, every
key decrypts) and only ever leaves the server once, in the answer that created it.
"""

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from pydantic import SecretStr

from service.errors import WebhooksNotConfiguredError


class SecretBox:
    def __init__(self, keys: SecretStr | None) -> None:
        if keys is None or not keys.get_secret_value().strip():
            raise WebhooksNotConfiguredError()
        try:
            self._fernet = MultiFernet(
                [Fernet(key.strip()) for key in keys.get_secret_value().split(",") if key.strip()]
            )
        except ValueError:
            raise WebhooksNotConfiguredError(
                "SCALING_WEBHOOK_SECRET_KEY is not a valid Fernet key (32 url-safe base64-encoded "
                "bytes; make one with `scaling-service webhook-key`)"
            ) from None

    def encrypt(self, secret: str) -> str:
        return self._fernet.encrypt(secret.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            raise WebhooksNotConfiguredError(
                "a webhook secret does not decrypt with SCALING_WEBHOOK_SECRET_KEY (was the key "
                "replaced without keeping the old one after it?)"
            ) from None


def new_key() -> str:
    """A fresh Fernet key for SCALING_WEBHOOK_SECRET_KEY."""
    return Fernet.generate_key().decode()
