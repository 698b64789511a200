"""Fits over HTTP end to end: Chinchilla data, provenance, staleness, refits, background fits."""

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from service.app import create_app
from service.fits.runner import FitRunner
from service.settings import Settings
from tests.conftest import ADMIN_TOKEN, EXAMPLES, make_experiment

EPOCH_CSV = EXAMPLES / "epoch_chinchilla_svg_extracted_data.csv"
# The reference refit (shared/reference/scaling-laws.md) drops the 5 highest-loss rows.
EPOCH_MAX_LOSS = 3.446995
REFERENCE = {"E": 1.8172, "alpha": 0.3473, "beta": 0.3672}


def import_chinchilla(client: TestClient, name: str = "chinchilla") -> None:
    make_experiment(client, name)
    response = client.post(
        f"/v1/experiments/{name}/runs:import",
        content=EPOCH_CSV.read_text(),
        headers={"content-type": "text/csv"},
    )
    assert response.status_code == 201, response.text
    runs = client.get(f"/v1/experiments/{name}/runs", params={"limit": 1000}).json()["items"]
    for run in runs:
        if run["loss"] >= EPOCH_MAX_LOSS:
            patched = client.patch(
                f"/v1/runs/{run['id']}", json={"excluded": True, "reason": "Epoch's filter"}
            )
            assert patched.status_code == 200


def fit(client: TestClient, name: str = "chinchilla", **body: Any) -> Any:
    return client.post(f"/v1/experiments/{name}/fits", json=body)


def run_queued(client: TestClient) -> int:
    app: Any = client.app
    runner = FitRunner(app.state.session_factory, app.state.fit_policy)
    done = 0
    while runner.run_once():
        done += 1
    return done


def test_chinchilla_fit_and_recommendation(client: TestClient) -> None:
    import_chinchilla(client)
    response = fit(client, bootstrap=100, seed=1)
    assert response.status_code == 201, response.text
    body = response.json()
    assert response.headers["location"] == f"/v1/fits/{body['id']}"
    assert body["status"] == "succeeded"
    assert body["n_runs"] == 240
    assert len(body["run_ids"]) == 240
    assert len(body["runs_sha256"]) == 64
    assert body["bootstrap_samples"] == 100
    for name, value in REFERENCE.items():
        assert abs(body["parameters"][name] - value) < 0.005, name
        low, high = body["intervals_95"][name]
        assert low < body["parameters"][name] < high
    # The reference objective is quoted to 6 significant digits.
    assert body["goodness"]["objective"] <= 0.00101827 * (1 + 1e-5)
    assert body["code_version"]
    assert body["stale"] is False
    assert client.get(f"/v1/fits/{body['id']}").json()["parameters"] == body["parameters"]

    recommendation = client.get(
        "/v1/experiments/chinchilla/recommendation", params={"flops": 5.88e23}
    ).json()
    assert recommendation["params"] == pytest.approx(7.3e10, rel=0.1)
    assert 15 < recommendation["tokens_per_param"] < 22
    assert recommendation["flops"] == pytest.approx(5.88e23, rel=1e-6)
    for key in ("params", "tokens", "loss"):
        interval = recommendation["intervals"][key]
        assert interval["low"] < recommendation[key] < interval["high"]
    assert recommendation["source"] == {
        "kind": "fit",
        "fit_id": body["id"],
        "experiment": "chinchilla",
        "preset": None,
        "stale": False,
    }
    assert recommendation["shape"]["n_layer"] > 0


def test_cached_and_uncached_answers_are_identical(client: TestClient) -> None:
    import_chinchilla(client)
    fit(client, bootstrap=50)
    state: Any = client.app.state  # type: ignore[attr-defined]
    url, params = "/v1/experiments/chinchilla/recommendation", {"flops": 1e24}
    first = client.get(url, params=params).json()  # computed: both caches miss
    misses = state.fit_cache.misses
    assert client.get(url, params=params).json() == first  # the answer cache
    assert state.fit_cache.misses == misses
    state.answer_cache.invalidate("chinchilla")
    assert client.get(url, params=params).json() == first  # the fit cache
    assert state.fit_cache.hits >= 1
    state.answer_cache.invalidate("chinchilla")
    state.fit_cache.clear()
    assert client.get(url, params=params).json() == first  # from the database
    post = client.post(
        "/v1/recommendations",
        json={"source": {"experiment": "chinchilla"}, "budget": {"flops": 1e24}},
    )
    assert post.json() == first


def test_writes_drop_cached_answers(client: TestClient) -> None:
    import_chinchilla(client)
    fit(client)
    url, params = "/v1/experiments/chinchilla/recommendation", {"flops": 1e23}
    assert client.get(url, params=params).json()["source"]["stale"] is False
    client.post(
        "/v1/experiments/chinchilla/runs", json={"runs": [{"params": 1, "tokens": 1, "loss": 9}]}
    )
    assert client.get(url, params=params).json()["source"]["stale"] is True
    run_queued(client)
    refreshed = client.get(url, params=params).json()
    assert refreshed["source"]["stale"] is False


def test_presets_agree_with_their_closed_form(client: TestClient) -> None:
    laws = {law["name"]: law for law in client.get("/v1/laws").json()}
    assert {"chinchilla-2022", "epoch-2024", "kaplan-2020", "muennighoff-2023"} <= set(laws)
    for name in ("chinchilla-2022", "chinchilla-2022-tex", "epoch-2024"):
        p = laws[name]["law"]
        E, A, B, alpha, beta = (p[k] for k in ("E", "A", "B", "alpha", "beta"))
        flops = 1e24
        body = {"source": {"preset": name}, "budget": {"flops": flops}}
        answer = client.post("/v1/recommendations", json=body).json()
        G = (alpha * A / (beta * B)) ** (1 / (alpha + beta))
        a, b = beta / (alpha + beta), alpha / (alpha + beta)
        assert answer["params"] == pytest.approx(G * (flops / 6) ** a, rel=1e-6)
        assert answer["tokens"] == pytest.approx((flops / 6) ** b / G, rel=1e-6)
        n, d = answer["params"], answer["tokens"]
        assert answer["loss"] == pytest.approx(E + A / n**alpha + B / d**beta, rel=1e-9)
        assert answer["source"]["kind"] == "preset"
        assert answer["intervals"] == {}


def test_gpu_hours_and_money_budgets(client: TestClient) -> None:
    hardware = {h["name"]: h for h in client.get("/v1/hardware").json()}
    gpu = next(iter(hardware))
    body = {
        "source": {"preset": "chinchilla-2022"},
        "budget": {"gpu_hours": 1e5, "gpu": gpu, "mfu": 0.4},
    }
    answer = client.post("/v1/recommendations", json=body).json()
    expected = 1e5 * 3600 * hardware[gpu]["peak_bf16_flops"] * 0.4
    assert answer["flops"] == pytest.approx(expected, rel=1e-6)
    assert answer["gpu_hours"] == pytest.approx(1e5, rel=1e-6)
    body["budget"] = {"usd": 2e5, "gpu": gpu, "mfu": 0.4, "usd_per_gpu_hour": 2.0}
    money = client.post("/v1/recommendations", json=body).json()
    assert money["cost_usd"] == pytest.approx(2e5, rel=1e-6)
    assert money["gpu_hours"] == pytest.approx(1e5, rel=1e-6)
    bad = client.post(
        "/v1/recommendations",
        json={"source": {"preset": "chinchilla-2022"}, "budget": {"flops": 1, "usd": 2}},
    )
    assert bad.status_code == 422


def test_degenerate_data_is_422_naming_the_problem(client: TestClient) -> None:
    make_experiment(client, "one-size")
    runs = [{"params": 1e8, "tokens": 2.0**k, "loss": 5.0 - 0.1 * k} for k in range(30, 40)]
    client.post("/v1/experiments/one-size/runs", json={"runs": runs})
    response = fit(client, "one-size")
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "degenerate_data"
    assert "one model size" in error["message"]
    make_experiment(client, "tiny")
    client.post(
        "/v1/experiments/tiny/runs",
        json={"runs": [{"params": 1e8 * (k + 1), "tokens": 1e9, "loss": 3.0} for k in range(3)]},
    )
    too_few = fit(client, "tiny")
    assert too_few.status_code == 422
    assert too_few.json()["error"]["code"] == "insufficient_data"
    assert client.get("/v1/experiments/tiny/fits").json()["items"] == []
    missing = client.get("/v1/experiments/tiny/recommendation", params={"flops": 1e20})
    assert missing.status_code == 404


def test_new_runs_make_the_fit_stale_and_schedule_one_refit(
    client: TestClient, database_url: str
) -> None:
    import_chinchilla(client)
    first = fit(client).json()
    assert client.get("/v1/experiments/chinchilla/fits/current").json()["stale"] is False

    def post(i: int) -> int:
        run = {"params": 1e9 * (1 + i), "tokens": 2e10, "loss": 2.5, "run_key": f"extra-{i}"}
        return client.post("/v1/experiments/chinchilla/runs", json={"runs": [run]}).status_code

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(post, range(8)))
    assert statuses == [201] * 8

    current = client.get("/v1/experiments/chinchilla/fits/current").json()
    assert current["id"] == first["id"]
    assert current["stale"] is True
    warned = client.get("/v1/experiments/chinchilla/recommendation", params={"flops": 1e22})
    assert warned.json()["source"]["stale"] is True
    assert any("stale" in w for w in warned.json()["warnings"])

    engine = sa.create_engine(database_url)
    with engine.connect() as connection:
        queued = connection.execute(
            sa.text("SELECT count(*) FROM fits WHERE status = 'queued' AND trigger = 'refit'")
        ).scalar_one()
    engine.dispose()
    assert queued == 1

    assert run_queued(client) == 1
    refit = client.get("/v1/experiments/chinchilla/fits/current").json()
    assert refit["id"] != first["id"]
    assert refit["trigger"] == "refit"
    assert refit["stale"] is False
    assert refit["n_runs"] == 248
    assert refit["settings"] == first["settings"]


def test_excluding_a_run_makes_the_fit_stale(client: TestClient) -> None:
    import_chinchilla(client)
    fitted = fit(client).json()
    run_id = fitted["run_ids"][0]
    client.patch(f"/v1/runs/{run_id}", json={"excluded": True, "reason": "suspicious"})
    assert client.get(f"/v1/fits/{fitted['id']}").json()["stale"] is True
    run_queued(client)
    refit = client.get("/v1/experiments/chinchilla/fits/current").json()
    assert refit["n_runs"] == 239
    assert run_id not in refit["run_ids"]


def test_large_bootstrap_runs_in_the_background(database_url: str) -> None:
    settings = Settings(
        database_url=database_url,
        auth=True,
        bootstrap_admin_key=ADMIN_TOKEN,
        fit_inline_max_bootstrap=10,
    )
    with TestClient(create_app(settings)) as client:
        client.headers["Authorization"] = f"Bearer {ADMIN_TOKEN}"
        import_chinchilla(client)
        response = fit(client, bootstrap=400)
        assert response.status_code == 202
        assert response.json()["status"] == "queued"
        url = response.headers["location"]
        for _ in range(600):
            state = client.get(url).json()
            if state["status"] in ("succeeded", "failed"):
                break
            threading.Event().wait(0.05)
        assert state["status"] == "succeeded", state
        assert state["progress"] == 1.0
        assert state["bootstrap_samples"] == 400
        assert state["duration_s"] > 0


def test_failed_background_fit_records_the_reason(client: TestClient) -> None:
    make_experiment(client, "flat")
    runs = [{"params": 1e8, "tokens": 1e9 * (k + 1), "loss": 3.0} for k in range(10)]
    client.post("/v1/experiments/flat/runs", json={"runs": runs})
    client.app.state.fit_policy = type(client.app.state.fit_policy)(  # type: ignore[attr-defined]
        inline_max_bootstrap=0,
        refit_debounce=client.app.state.fit_policy.refit_debounce,  # type: ignore[attr-defined]
        lease=client.app.state.fit_policy.lease,  # type: ignore[attr-defined]
    )
    queued = fit(client, "flat", bootstrap=10)
    assert queued.status_code == 202
    run_queued(client)
    failed = client.get(queued.headers["location"]).json()
    assert failed["status"] == "failed"
    assert failed["error"]["code"] == "degenerate_data"


def test_frontier_and_compare(client: TestClient) -> None:
    import_chinchilla(client)
    fit(client, bootstrap=20)
    points = client.get(
        "/v1/experiments/chinchilla/frontier",
        params={"flops_min": 1e20, "flops_max": 1e24, "points": 5},
    ).json()
    assert len(points) == 5
    params = [p["params"] for p in points]
    assert np.all(np.diff(params) > 0)
    assert all(p["intervals"] for p in points)
    compared = client.post(
        "/v1/compare",
        json={
            "sources": [
                {"preset": "chinchilla-2022"},
                {"preset": "epoch-2024"},
                {"experiment": "chinchilla"},
            ],
            "budget": {"flops": 1e24},
        },
    ).json()
    rows = compared["rows"]
    assert [row["recommendation"]["source"]["kind"] for row in rows] == ["preset", "preset", "fit"]
    params = [row["recommendation"]["params"] for row in rows]
    assert len(set(params)) == 3
    spread = compared["disagreement"]["spreads"]["params"]
    assert spread["ratio"] == pytest.approx(max(params) / min(params))
    # Only the fit has bootstrap intervals: too few to say whether they overlap.
    assert spread["intervals_overlap"] is None
    assert rows[2]["label"] == "chinchilla (chinchilla, parametric)"
    assert f"{spread['ratio']:.3g}x" in compared["disagreement"]["statement"]


def test_plots_of_a_fit(client: TestClient) -> None:
    import xml.etree.ElementTree as ET

    import_chinchilla(client)
    fitted = fit(client, bootstrap=20).json()
    client.post(
        "/v1/experiments/chinchilla/runs",
        json={"runs": [{"params": 3e9, "tokens": 6e10, "loss": 2.3}]},
    )
    for kind in ("isoflop", "frontier", "residuals"):
        response = client.get(f"/v1/fits/{fitted['id']}/plots/{kind}.svg")
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "image/svg+xml"
        root = ET.fromstring(response.content)
        assert root.tag.endswith("svg")
    unknown = client.get(f"/v1/fits/{fitted['id']}/plots/pie.svg")
    assert unknown.status_code == 404
    assert unknown.json()["error"]["details"]["known"] == ["isoflop", "frontier", "residuals"]
    assert client.get("/v1/fits/999999/plots/isoflop.svg").status_code == 404
