"""The operator's allow-list of webhook targets: callers never choose an arbitrary address.

An entry is `host`, `host:port` or `*.domain[:port]` (https only), or the same after `http://`
(plain http allowed too). Without a port an entry allows the scheme's default port; port `*`
allows any. Hosts match exactly (case-insensitively), a `*.` entry any subdomain of its domain.
"""

from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict

from service.errors import WebhookUrlNotAllowedError

DEFAULT_PORTS = {"http": 80, "https": 443}


class AllowedHost(BaseModel):
    """One allow-list entry, parsed."""

    model_config = ConfigDict(frozen=True)

    host: str  # lower case; "*.example.com" for any subdomain
    port: int | None  # None: the URL scheme's default port
    any_port: bool = False
    http: bool = False  # plain http allowed as well as https

    def allows(self, scheme: str, host: str, port: int) -> bool:
        if scheme == "http" and not self.http:
            return False
        if not (self.any_port or port == (self.port or DEFAULT_PORTS[scheme])):
            return False
        if self.host.startswith("*."):
            return host.endswith(self.host[1:]) and len(host) > len(self.host) - 1
        return host == self.host

    def __str__(self) -> str:
        port = ":*" if self.any_port else f":{self.port}" if self.port else ""
        return f"{'http://' if self.http else ''}{self.host}{port}"


def parse_entry(entry: str) -> AllowedHost:
    text = entry.strip().lower()
    http = text.startswith("http://")
    if http:
        text = text.removeprefix("http://")
    text = text.removeprefix("https://").rstrip("/")
    host, _, port = (
        text.rpartition(":") if ":" in text and not text.endswith("]") else (text, "", "")
    )
    host = host.strip("[]")  # an IPv6 literal: [::1]:8080
    if not host or "/" in host or "@" in host:
        raise ValueError(f"webhook allow-list entry {entry!r}: expected [http://]host[:port]")
    if port == "*":
        return AllowedHost(host=host, port=None, any_port=True, http=http)
    if port and not (port.isdigit() and 0 < int(port) < 65536):
        raise ValueError(f"webhook allow-list entry {entry!r}: bad port {port!r}")
    return AllowedHost(host=host, port=int(port) if port else None, http=http)


def parse_allowed_hosts(value: object) -> object:
    """A comma-separated string (the environment) becomes entries; anything else is left for
    pydantic to validate."""
    if isinstance(value, str):
        return [parse_entry(item) for item in value.split(",") if item.strip()]
    if isinstance(value, list):
        return [parse_entry(item) if isinstance(item, str) else item for item in value]
    return value


def check_url(url: str, allowed: list[AllowedHost]) -> str:
    """`url` if the allow-list lets webhooks go there; else `WebhookUrlNotAllowedError` saying
    why. Credentials in the URL are refused (they would be stored and shown in clear)."""
    if not allowed:
        raise WebhookUrlNotAllowedError(
            "webhooks are off on this server: the operator has not allowed any target "
            "(SCALING_WEBHOOK_ALLOWED_HOSTS is empty)",
            field="url",
        )
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise WebhookUrlNotAllowedError(f"not a valid URL: {exc}", field="url") from None
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        raise WebhookUrlNotAllowedError("the URL must be http(s)://host[:port]/path", field="url")
    if parts.username is not None or parts.password is not None:
        raise WebhookUrlNotAllowedError(
            "the URL must not carry credentials; verify deliveries by their signature",
            field="url",
        )
    if parts.fragment:
        raise WebhookUrlNotAllowedError("the URL must not have a #fragment", field="url")
    host = parts.hostname.lower()
    port = port or DEFAULT_PORTS[parts.scheme]
    if not any(entry.allows(parts.scheme, host, port) for entry in allowed):
        raise WebhookUrlNotAllowedError(
            f"{parts.scheme}://{host}:{port} is not on this server's webhook allow-list "
            f"(SCALING_WEBHOOK_ALLOWED_HOSTS: {', '.join(map(str, allowed))}); plain http needs "
            "an http:// entry",
            field="url",
            allowed=[str(entry) for entry in allowed],
        )
    return url
