"""Eight clients post overlapping keyed batches at once: no duplicates, no 5xx."""

from concurrent.futures import ThreadPoolExecutor

import httpx
import sqlalchemy as sa

from service.settings import Settings
from service.testing import live_server
from tests.conftest import ADMIN_TOKEN

CLIENTS, ROUNDS, BATCH, STRIDE = 8, 4, 120, 40


def body(keys: range) -> dict[str, object]:
    return {
        "runs": [
            {"run_key": f"k{k}", "params": 1e6 * (k + 1), "tokens": 2e7, "loss": 3.0 + k * 1e-4}
            for k in keys
        ]
    }


def test_overlapping_batches(settings: Settings, database_url: str) -> None:
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    with live_server(settings) as base:
        with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
            assert client.post("/v1/experiments", json={"name": "race"}).status_code == 201

        def worker(index: int) -> list[int]:
            statuses = []
            with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
                for round_ in range(ROUNDS):
                    start = ((index + round_) % CLIENTS) * STRIDE
                    response = client.post(
                        "/v1/experiments/race/runs", json=body(range(start, start + BATCH))
                    )
                    statuses.append(response.status_code)
            return statuses

        with ThreadPoolExecutor(CLIENTS) as pool:
            statuses = [s for result in pool.map(worker, range(CLIENTS)) for s in result]

    assert set(statuses) <= {200, 201}, statuses
    expected_keys = {f"k{k}" for k in range((CLIENTS - 1) * STRIDE + BATCH)}
    engine = sa.create_engine(database_url)
    with engine.connect() as connection:
        keys = connection.execute(sa.text("SELECT run_key FROM runs")).scalars().all()
    engine.dispose()
    assert len(keys) == len(set(keys)), "a run_key was stored twice"
    assert set(keys) == expected_keys
