"""Structured JSON logs: one line per event on stderr, for structlog and stdlib loggers alike.

`configure_logging()` installs one handler on the root logger whose formatter renders JSON with an
ISO-8601 UTC timestamp, the level, the logger name and whatever is bound in structlog's
contextvars (the request id, method, path, ...). uvicorn's and SQLAlchemy's stdlib records and
Python warnings go through the same formatter. A redaction step runs last, on every record: keys
named like credentials and anything that looks like an API key (`ss_<prefix>_<secret>`) never
reach the output.
"""

import logging
import re
import sys
from collections.abc import Iterable
from typing import Any, TextIO

import structlog
from structlog.types import EventDict, Processor, WrappedLogger

REDACTED = "[REDACTED]"
# Whole words of a key: `refresh_token`, `X-API-Key`, `password_hash`; not `tokens` (a count).
_SENSITIVE_KEY = re.compile(
    r"(^|[-_.])(authori[sz]ation|token|secret|passw(or)?d|cookie|credentials?|api[-_]?key)"
    r"($|[-_.])",
    re.IGNORECASE,
)
# Our API keys read ss_<prefix>_<secret>; keep the prefix (it names the key), drop the secret.
_TOKEN = re.compile(r"\bss_([A-Za-z0-9-]+)_[A-Za-z0-9_\-.~+/=]+")
_BEARER = re.compile(r"\b(Bearer|Basic)\s+[A-Za-z0-9_\-.~+/=]+", re.IGNORECASE)
_exact_secrets: set[str] = set()
_configured = False


def register_secret(value: str) -> None:
    """Redact this exact string wherever it appears (e.g. the bootstrap admin key)."""
    if len(value) >= 8:
        _exact_secrets.add(value)


def _scrub_text(text: str) -> str:
    for secret in _exact_secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    text = _TOKEN.sub(lambda m: f"ss_{m.group(1)}_{REDACTED}", text)
    return _BEARER.sub(lambda m: f"{m.group(1)} {REDACTED}", text)


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return _scrub_text(value)
    if isinstance(value, bytes):
        return _scrub_text(value.decode("utf-8", "replace"))
    if isinstance(value, dict):
        return {
            k: REDACTED if isinstance(k, str) and _SENSITIVE_KEY.search(k) else _scrub(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [_scrub(v) for v in value]
    if isinstance(value, int | float | bool) or value is None:
        return value
    return _scrub_text(repr(value))


def redact(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    """structlog processor: mask credential-like keys and token-like values, recursively."""
    scrubbed: EventDict = _scrub(event_dict)
    return scrubbed


class _StderrHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever `sys.stderr` is at emit time (so test capture sees it)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def _shared_processors() -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]


def _level(level: str | int) -> int:
    if isinstance(level, int):
        return level
    value = logging.getLevelName(level.upper())
    return value if isinstance(value, int) else logging.INFO


def configure_logging(level: str | int = "info", secrets: Iterable[str] = ()) -> None:
    """Route structlog and stdlib logging to JSON lines on stderr. Safe to call again: later
    calls only change the level and add secrets to redact."""
    global _configured
    for secret in secrets:
        register_secret(secret)
    root = logging.getLogger()
    root.setLevel(_level(level))
    if _configured:
        return
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_shared_processors(),
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            redact,
            structlog.processors.JSONRenderer(),
        ],
    )
    for handler in [h for h in root.handlers if isinstance(h, _StderrHandler)]:
        root.removeHandler(handler)
    handler = _StderrHandler()
    handler.setFormatter(formatter)
    root.addHandler(handler)
    for name in ("uvicorn", "uvicorn.error", "sqlalchemy"):  # drop handlers of other configs
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    # The request-context middleware writes one access line per request; uvicorn's would repeat it.
    uvicorn_access = logging.getLogger("uvicorn.access")
    uvicorn_access.handlers.clear()
    uvicorn_access.propagate = False
    logging.captureWarnings(True)
    structlog.configure(
        processors=[
            *_shared_processors(),
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,  # capture_logs() in tests sees every logger
    )
    _configured = True
