"""AsyncScalingClient: the same API awaited, against the live app and a mock transport."""

import httpx
import pytest

from service.client import (
    AsyncScalingClient,
    NotFoundError,
    RetryPolicy,
    RunFilters,
    ValidationError,
)
from service.schemas.fits import FitOut
from tests.client.conftest import EPOCH_CSV, FAST_RETRY
from tests.conftest import ADMIN_TOKEN

pytestmark = pytest.mark.anyio


async def test_async_round_trip(sqlite_server: str) -> None:
    async with AsyncScalingClient(sqlite_server, ADMIN_TOKEN, retry=FAST_RETRY) as api:
        await api.create_experiment("chinchilla")
        sent: list[int] = []
        imported = await api.import_runs(
            "chinchilla", EPOCH_CSV, progress=lambda done, total: sent.append(done)
        )
        assert imported.created == 245
        assert sent[-1] == EPOCH_CSV.stat().st_size
        names = [e.name async for e in api.iter_experiments(page_size=1)]
        assert names == ["chinchilla"]
        runs = [r async for r in api.iter_runs("chinchilla", page_size=50)]
        assert len(runs) == 245
        small = [r async for r in api.iter_runs("chinchilla", RunFilters(flops_max=1e19))]
        assert small
        assert all(r.flops <= 1e19 for r in small)
        excluded = await api.exclude_run(runs[0].id, "test")
        assert excluded.excluded

        # More resamples than the server fits inline: queued, run by its background runner.
        fit = await api.create_fit("chinchilla", {"bootstrap": 201, "seed": 3})
        assert fit.status in ("queued", "running", "succeeded")
        seen: list[FitOut] = []
        done = await api.wait_for(fit.id, timeout=120, poll_interval=0.1, on_progress=seen.append)
        assert done.status == "succeeded"
        assert done.bootstrap_samples == 201
        assert seen[-1].status == "succeeded"
        rec = await api.recommendation("chinchilla", 1e23)
        assert rec.source.fit_id == fit.id
        assert rec.intervals
        assert (await api.current_fit("chinchilla")).id == fit.id
        assert len([f async for f in api.iter_fits("chinchilla")]) >= 1
        assert (await api.plot(fit.id, "residuals")).lstrip().startswith(b"<")
        frontier = await api.frontier("chinchilla", 1e20, 1e22, points=3)
        assert len(frontier) == 3
        assert (await api.hardware())[0].name
        assert await api.laws()

        with pytest.raises(NotFoundError):
            await api.get_run(10**9)
        with pytest.raises(ValidationError) as invalid:
            await api.add_runs("chinchilla", [{"params": -1, "tokens": 1, "loss": 1}])
        assert invalid.value.row_errors[0]["row"] == 0
        await api.delete_experiment("chinchilla", force=True)


async def test_async_retries_503_with_one_idempotency_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SCALING_API_KEY", raising=False)
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if len(seen) < 3:
            return httpx.Response(
                503,
                json={"error": {"code": "database_unavailable", "message": "m", "details": None}},
                headers={"Retry-After": "0"},
            )
        return httpx.Response(
            201,
            json={
                "created": 1,
                "existing": 0,
                "runs": [{"id": 1, "run_key": "a", "status": "created"}],
            },
        )

    async with AsyncScalingClient(
        "http://scaling.test",
        transport=httpx.MockTransport(handler),
        retry=RetryPolicy(attempts=3, backoff=0.001),
    ) as api:
        result = await api.add_runs("exp", [{"run_key": "a", "params": 1, "tokens": 1, "loss": 1}])
    assert result.created == 1
    assert len(seen) == 3
    assert len({r.headers["idempotency-key"] for r in seen}) == 1
    assert "authorization" not in seen[0].headers
