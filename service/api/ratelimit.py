"""Optional per-key rate limiting: a token bucket in memory per API key (per client address when
no key is sent), 429 with Retry-After when empty. Off unless `SCALING_RATE_LIMIT_PER_SECOND` > 0.

Each process keeps its own buckets, so with N workers or replicas a key gets up to N times the
rate; this protects the service from one runaway client, it is not a quota.
"""

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.types import ASGIApp, Receive, Scope, Send

from service.api.caller import client_address, principal_of
from service.envelope import error_body, error_response

EXEMPT_PATHS = ("/healthz", "/readyz", "/metrics")


class TokenBucketLimiter:
    """`rate` tokens a second up to `burst`, per key; the least recently seen keys are forgotten
    past `max_keys` (a forgotten key starts again with a full bucket)."""

    def __init__(
        self,
        rate: float,
        burst: int,
        max_keys: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate, self.burst, self.max_keys, self.clock = rate, float(burst), max_keys, clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        """Take one token: 0.0 when allowed, else the seconds until one is available."""
        now = self.clock()
        with self._lock:
            tokens, last = self._buckets.pop(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            wait = 0.0
            if tokens >= 1.0:
                tokens -= 1.0
            else:
                wait = (1.0 - tokens) / self.rate
            self._buckets[key] = (tokens, now)
            while len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
        return wait


async def _caller(scope: Scope) -> str:
    """The caller's API key (however its header is spelt), else the client's address: made-up
    tokens share their sender's bucket."""
    try:
        principal = await principal_of(scope)
    except (OperationalError, PoolTimeoutError):
        principal = None  # the route reports the outage
    if principal is not None and principal.key_id is not None:
        return f"key:{principal.key_id}"
    return f"addr:{client_address(scope)}"


class RateLimitMiddleware:
    def __init__(self, app: ASGIApp, limiter: TokenBucketLimiter) -> None:
        self.app = app
        self.limiter = limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in EXEMPT_PATHS:
            await self.app(scope, receive, send)
            return
        wait = self.limiter.take(await _caller(scope))
        if wait <= 0:
            await self.app(scope, receive, send)
            return
        retry_after = max(1, math.ceil(wait))
        body = error_body(
            "rate_limited",
            f"too many requests: at most {self.limiter.rate:g} a second per key "
            f"(burst {self.limiter.burst:g}); retry after {retry_after} s",
            {
                "limit_per_second": self.limiter.rate,
                "burst": self.limiter.burst,
                "retry_after_seconds": retry_after,
            },
        )
        refusal = error_response(429, body, {"Retry-After": str(retry_after)})
        await refusal(scope, receive, send)
