"""The pieces: the signature (and the documented check), the allow-list, the secret box, the
backoff, and when a recommendation counts as moved."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from pydantic import SecretStr, ValidationError

from service.errors import WebhooksNotConfiguredError, WebhookUrlNotAllowedError
from service.settings import Settings
from service.webhooks.allowlist import check_url, parse_allowed_hosts, parse_entry
from service.webhooks.delivery import backoff
from service.webhooks.events import moved
from service.webhooks.secrets import SecretBox, new_key
from service.webhooks.signing import signature_header
from tests.webhooks.conftest import doc_verifier

SECRET = "whsec_test-secret-of-some-length"


def test_the_documented_check_accepts_our_signature_and_nothing_else() -> None:
    verify = doc_verifier()
    body = b'{"id": 1, "type": "ping"}'
    header = signature_header(SECRET, body)
    assert verify(SECRET, header, body)
    assert not verify(SECRET, header, body + b" ")
    assert not verify("whsec_another-secret-entirely", header, body)
    assert not verify(SECRET, header.replace("v1=", "v1=0"), body)
    stale = signature_header(SECRET, body, timestamp=int(time.time()) - 3600)
    assert not verify(SECRET, stale, body)
    assert not verify(SECRET, "", body)
    assert not verify(SECRET, "t=abc,v1=00", body)


@pytest.mark.parametrize(
    ("entries", "url", "allowed"),
    [
        ("hooks.example.com", "https://hooks.example.com/x", True),
        ("hooks.example.com", "http://hooks.example.com/x", False),  # https only
        ("hooks.example.com", "https://hooks.example.com:8443/x", False),  # default port only
        ("hooks.example.com:8443", "https://hooks.example.com:8443/x", True),
        ("HOOKS.example.com", "https://hooks.EXAMPLE.com/x", True),
        ("*.example.com", "https://a.b.example.com/x", True),
        ("*.example.com", "https://example.com/x", False),
        ("*.example.com", "https://evilexample.com/x", False),
        ("hooks.example.com", "https://hooks.example.com.evil.net/x", False),
        ("http://127.0.0.1:*", "http://127.0.0.1:5555/x", True),
        ("http://127.0.0.1:*", "http://127.0.0.2:5555/x", False),
        ("http://[::1]:8080", "http://[::1]:8080/x", True),
        ("http://10.1.2.3", "http://10.1.2.3/x", True),
        ("http://10.1.2.3", "http://10.1.2.3:81/x", False),
    ],
)
def test_allow_list(entries: str, url: str, allowed: bool) -> None:
    hosts = parse_allowed_hosts(entries)
    assert isinstance(hosts, list)
    if allowed:
        assert check_url(url, hosts) == url
    else:
        with pytest.raises(WebhookUrlNotAllowedError):
            check_url(url, hosts)


def test_allow_list_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCALING_WEBHOOK_ALLOWED_HOSTS", "hooks.example.com, http://ci:*")
    settings = Settings()
    assert [str(entry) for entry in settings.webhook_allowed_hosts] == [
        "hooks.example.com",
        "http://ci:*",
    ]
    for bad in ("http://user@host", "host:99999", "host/path", ""):
        if bad:
            with pytest.raises(ValueError, match="allow-list entry"):
                parse_entry(bad)
    with pytest.raises(ValidationError, match="LEASE"):
        Settings(webhook_timeout_seconds=30, webhook_lease_seconds=10)


def test_secret_box_round_trips_and_rotates() -> None:
    old, new = new_key(), new_key()
    token = SecretBox(SecretStr(old)).encrypt(SECRET)
    assert SECRET not in token
    rotated = SecretBox(SecretStr(f"{new},{old}"))
    assert rotated.decrypt(token) == SECRET
    with pytest.raises(WebhooksNotConfiguredError, match="does not decrypt"):
        SecretBox(SecretStr(new)).decrypt(token)
    with pytest.raises(WebhooksNotConfiguredError):
        SecretBox(None)


def test_backoff_doubles_up_to_the_cap() -> None:
    settings = Settings(webhook_backoff_seconds=10, webhook_backoff_max_seconds=60)
    waits = [backoff(settings, attempts) for attempts in range(1, 6)]
    assert waits == [timedelta(seconds=s) for s in (10, 20, 40, 60, 60)]


def test_moved_means_outside_the_previous_interval() -> None:
    before = {"params": 1e9, "tokens": 2e10, "loss": 2.0}
    intervals = {"params": (0.8e9, 1.25e9), "tokens": (1.6e10, 2.5e10)}
    assert moved(before, intervals, {"params": 1.2e9, "tokens": 1.7e10, "loss": 2.0}) == []
    assert moved(before, intervals, {"params": 1.3e9, "tokens": 1.5e10, "loss": 2.0}) == [
        "params",
        "tokens",
    ]
    # Without intervals (no bootstrap): more than 10% either way.
    assert moved(before, {}, {"params": 1.05e9, "tokens": 1.9e10, "loss": 2.0}) == []
    assert moved(before, {}, {"params": 0.85e9, "tokens": 2e10, "loss": 2.0}) == ["params"]
