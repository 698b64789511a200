"""Optional per-key rate limiting: a token bucket per key, 429 with Retry-After; off by default."""

from fastapi.testclient import TestClient

from service.api.ratelimit import TokenBucketLimiter
from service.app import create_app
from service.settings import Settings
from tests.api.test_auth import key
from tests.conftest import ADMIN_TOKEN


def test_bucket_refills_at_its_rate() -> None:
    now = [0.0]
    limiter = TokenBucketLimiter(rate=2, burst=3, max_keys=2, clock=lambda: now[0])
    assert [limiter.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("a") == 0.5  # empty: one token in 1/2 s
    now[0] += 0.5
    assert limiter.take("a") == 0.0
    assert limiter.take("b") == 0.0  # another key has its own bucket
    limiter.take("c")  # past max_keys the least recently seen key is forgotten
    assert "a" not in limiter._buckets


def test_off_by_default(client: TestClient) -> None:
    assert Settings().rate_limit_per_second == 0
    assert all(client.get("/v1/laws").status_code == 200 for _ in range(60))


def test_per_key_429_with_retry_after(database_url: str) -> None:
    settings = Settings(
        database_url=database_url,
        bootstrap_admin_key=ADMIN_TOKEN,
        fit_runner=False,
        rate_limit_per_second=0.5,
        rate_limit_burst=3,
    )
    with TestClient(create_app(settings)) as client:
        client.headers["Authorization"] = f"Bearer {ADMIN_TOKEN}"
        other = key(client, "read")  # 1st admin request
        assert client.get("/v1/laws").status_code == 200
        assert client.get("/v1/laws").status_code == 200
        limited = client.get("/v1/laws")
        assert limited.status_code == 429
        assert limited.headers["retry-after"] == "2"
        assert limited.headers["x-content-type-options"] == "nosniff"
        error = limited.json()["error"]
        assert error["code"] == "rate_limited" and error["details"]["limit_per_second"] == 0.5
        # Another key is not affected; probes and metrics are never limited.
        as_other = {"Authorization": f"Bearer {other}"}
        assert client.get("/v1/laws", headers=as_other).status_code == 200
        assert client.get("/healthz").status_code == 200
        assert client.get("/readyz").status_code == 200


def test_the_bucket_is_the_key_not_the_header_spelling(database_url: str) -> None:
    """Twenty spellings of "Bearer" share one key's bucket; made-up tokens share their
    sender's address bucket instead of getting one each."""
    settings = Settings(
        database_url=database_url,
        bootstrap_admin_key=ADMIN_TOKEN,
        fit_runner=False,
        rate_limit_per_second=0.1,
        rate_limit_burst=2,
    )
    with TestClient(create_app(settings)) as client:
        spellings = ["Bearer", "bearer", "BEARER", "bEaReR", "BeArEr"]
        answers = [
            client.get("/v1/laws", headers={"Authorization": f"{s} {ADMIN_TOKEN}"}).status_code
            for s in spellings
        ]
        assert answers[:2] == [200, 200] and set(answers[2:]) == {429}
        forged = [
            client.get("/v1/laws", headers={"Authorization": f"Bearer ss_x{i}_y"}).status_code
            for i in range(5)
        ]
        assert forged[:2] == [401, 401] and set(forged[2:]) == {429}
