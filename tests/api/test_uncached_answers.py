"""GET recommendation with the answer cache off: every request reads the experiment and its fit
in force (one statement, store.fits.experiment_and_current) and recomputes the answer."""

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.dialects import postgresql, sqlite

from service.app import create_app
from service.settings import Settings
from service.store import fits as fit_store
from tests.conftest import ADMIN_TOKEN, grid_runs, make_experiment


@pytest.fixture
def uncached(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings.model_copy(update={"answer_cache_seconds": 0}))) as c:
        c.headers["Authorization"] = f"Bearer {ADMIN_TOKEN}"
        yield c


def recommendation(client: TestClient, name: str, **query: object) -> dict[str, Any]:
    response = client.get(f"/v1/experiments/{name}/recommendation", params={"flops": 1e21, **query})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_every_answer_reads_the_fit_in_force(uncached: TestClient) -> None:
    make_experiment(uncached, "grid")
    missing = uncached.get("/v1/experiments/gird/recommendation", params={"flops": 1e21})
    assert missing.status_code == 404
    assert "did you mean 'grid'?" in missing.json()["error"]["message"]

    unfitted = uncached.get("/v1/experiments/grid/recommendation", params={"flops": 1e21})
    assert unfitted.status_code == 404
    assert "has no parametric chinchilla fit yet" in unfitted.json()["error"]["message"]

    posted = uncached.post("/v1/experiments/grid/runs", json={"runs": grid_runs()})
    assert posted.status_code == 201, posted.text
    first = uncached.post("/v1/experiments/grid/fits", json={"bootstrap": 20, "seed": 1})
    assert first.status_code == 201 and first.json()["status"] == "succeeded", first.text
    answer = recommendation(uncached, "grid")
    assert answer["source"] == {
        "kind": "fit",
        "fit_id": first.json()["id"],
        "experiment": "grid",
        "preset": None,
        "stale": False,
    }
    # Another law has no fit: the join does not fall back to the chinchilla one.
    other = uncached.get(
        "/v1/experiments/grid/recommendation", params={"flops": 1e21, "method": "isoflop"}
    )
    assert other.status_code == 404, other.text

    second = uncached.post("/v1/experiments/grid/fits", json={"bootstrap": 20, "seed": 2})
    assert second.status_code == 201, second.text
    assert recommendation(uncached, "grid")["source"]["fit_id"] == second.json()["id"]

    more = uncached.post(
        "/v1/experiments/grid/runs",
        json={"runs": [{"params": 2e8, "tokens": 5e9, "loss": 3.1, "run_key": "late"}]},
    )
    assert more.status_code == 201, more.text
    stale = recommendation(uncached, "grid")["source"]
    assert stale["fit_id"] == second.json()["id"] and stale["stale"] is True


def test_an_uncached_answer_reads_the_experiment_and_a_fit_not_in_memory(
    uncached: TestClient,
) -> None:
    make_experiment(uncached, "shaped", metadata={"vocab_size": 256, "context_tokens": 512})
    posted = uncached.post("/v1/experiments/shaped/runs", json={"runs": grid_runs()})
    assert posted.status_code == 201, posted.text
    fitted = uncached.post("/v1/experiments/shaped/fits", json={"bootstrap": 20, "seed": 1})
    assert fitted.status_code == 201, fitted.text
    warm = uncached.get("/v1/experiments/shaped/recommendation", params={"flops": 1e21})
    assert warm.status_code == 200, warm.text
    shape, hyper = warm.json()["shape"], warm.json()["hyperparameters"]
    assert shape["params"] - shape["non_embedding_params"] == 256 * shape["d_model"]
    assert "vocab_size 256 from the experiment's metadata" in hyper["notes"]
    assert hyper["context_tokens"] == 512

    # A replica that never saw this fit: its result is read by id, and answers the same.
    app: Any = uncached.app
    app.state.fit_cache.clear()
    cold = uncached.get("/v1/experiments/shaped/recommendation", params={"flops": 1e21})
    assert cold.status_code == 200, cold.text
    assert cold.content == warm.content
    assert app.state.fit_cache.misses >= 1


@pytest.mark.parametrize("dialect", [sqlite.dialect, postgresql.dialect])
def test_the_reads_status_is_a_constant_in_the_sql(dialect: type[sa.Dialect]) -> None:
    # A bound status would make SQLite prepare the read again at every execution (it meets the
    # partial index uq_fits_queued_refit), and keep PostgreSQL's generic plans off that index.
    compiled = fit_store._EXPERIMENT_AND_CURRENT.compile(dialect=dialect())
    assert "fits.status = 'succeeded'" in str(compiled)
    assert {name for name in compiled.params if not name.startswith("param_")} == {
        "name",
        "law",
        "method",
    }
    either = fit_store.status_is("queued", "running").compile(dialect=dialect())
    assert "fits.status IN ('queued', 'running')" in str(either) and not either.params
