"""Run ingestion, listing and exclusion over HTTP, on each backend."""

import json
from typing import Any

from fastapi.testclient import TestClient

from tests.conftest import make_experiment


def run(**fields: Any) -> dict[str, Any]:
    return {"params": 1.0e8, "tokens": 2.0e9, "loss": 3.0, **fields}


def post(client: TestClient, runs: list[dict[str, Any]], name: str = "exp") -> Any:
    return client.post(f"/v1/experiments/{name}/runs", json={"runs": runs})


def all_runs(client: TestClient, name: str = "exp", **params: Any) -> list[dict[str, Any]]:
    response = client.get(f"/v1/experiments/{name}/runs", params={"limit": 1000, **params})
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def test_batch_is_stored_and_reads_back(client: TestClient) -> None:
    make_experiment(client)
    response = post(
        client,
        [
            run(run_key="a", seed=3, hyperparameters={"lr": 1e-3}, metadata={"m": "x"}),
            run(flops=1.3e18, unique_tokens=1e9, source="sweep"),
        ],
    )
    assert response.status_code == 201
    body = response.json()
    assert (body["created"], body["existing"], body["warnings"]) == (2, 0, [])
    first, second = all_runs(client)
    assert first["id"] == body["runs"][0]["id"]
    assert first["flops"] == 6.0 * 1.0e8 * 2.0e9
    assert first["flops_derived"] is True
    assert (first["seed"], first["hyperparameters"], first["metadata"]) == (
        3,
        {"lr": 1e-3},
        {"m": "x"},
    )
    assert second["flops"] == 1.3e18 and second["flops_derived"] is False
    assert second["source"] == "sweep" and second["unique_tokens"] == 1e9
    assert client.get(f"/v1/runs/{first['id']}").json() == first


def test_same_run_key_same_body_is_existing(client: TestClient) -> None:
    make_experiment(client)
    assert post(client, [run(run_key="a")]).status_code == 201
    again = post(client, [run(run_key="a"), run(run_key="b")])
    assert again.status_code == 201
    assert [r["status"] for r in again.json()["runs"]] == ["existing", "created"]
    replay = post(client, [run(run_key="a"), run(run_key="b")])
    assert replay.status_code == 200
    assert replay.json()["existing"] == 2
    assert len(all_runs(client)) == 2


def test_a_batch_mixing_stored_and_new_runs_reports_each(client: TestClient) -> None:
    # New keys on both sides of a stored one (they are inserted in key order), and an unkeyed
    # run: on SQLite the skipped row left a gap in the ids that once hid the first new run,
    # reported "existing" though this batch created it.
    make_experiment(client)
    stored = post(client, [run(run_key="m")])
    assert stored.status_code == 201, stored.text
    batch = [
        run(run_key="a", loss=3.1),
        run(run_key="m"),
        run(run_key="z", loss=3.2),
        run(loss=3.3),
    ]
    response = post(client, batch)
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["created"], body["existing"]) == (3, 1)
    assert [(r["run_key"], r["status"]) for r in body["runs"]] == [
        ("a", "created"),
        ("m", "existing"),
        ("z", "created"),
        (None, "created"),
    ]
    assert body["runs"][1]["id"] == stored.json()["runs"][0]["id"]
    by_id = {r["id"]: (r["run_key"], r["loss"]) for r in all_runs(client)}
    assert len(by_id) == 4
    for answered, sent in zip(body["runs"], batch, strict=True):
        assert by_id[answered["id"]] == (answered["run_key"], sent["loss"])


def test_same_run_key_other_body_is_409_and_stores_nothing(client: TestClient) -> None:
    make_experiment(client)
    post(client, [run(run_key="a")])
    response = post(client, [run(run_key="new"), run(run_key="a", loss=2.9)])
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "run_key_conflict"
    assert error["details"]["run_keys"] == ["a"]
    assert "'a'" in error["message"]
    assert [r["run_key"] for r in all_runs(client)] == ["a"]


def test_duplicate_key_within_batch_is_422(client: TestClient) -> None:
    make_experiment(client)
    response = post(client, [run(run_key="a"), run(), run(run_key="a")])
    assert response.status_code == 422
    assert response.json()["error"]["details"]["duplicates"] == [{"run_key": "a", "rows": [0, 2]}]
    assert all_runs(client) == []


def test_invalid_values_name_field_and_row(client: TestClient) -> None:
    make_experiment(client)
    for bad in (
        {"loss": 0},
        {"params": -5},
        {"tokens": "inf"},
        {"flops": 0},
        {"unexpected": True},
    ):
        response = post(client, [run(), run(**bad)])
        assert response.status_code == 422, bad
        detail = response.json()["error"]["details"][0]
        assert detail["row"] == 1
        assert detail["field"] == f"runs[1].{next(iter(bad))}"
    missing = post(client, [{"params": 1, "tokens": 1}])
    assert missing.json()["error"]["details"][0]["field"] == "runs[0].loss"
    assert post(client, []).status_code == 422
    assert all_runs(client) == []


def test_nan_literal_is_rejected(client: TestClient) -> None:
    make_experiment(client)
    response = client.post(
        "/v1/experiments/exp/runs",
        content=b'{"runs": [{"params": 1, "tokens": 1, "loss": NaN}]}',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 422
    assert all_runs(client) == []


def test_flops_far_from_6nd_warns(client: TestClient) -> None:
    make_experiment(client)
    six_nd = 6.0 * 1.0e8 * 2.0e9
    response = post(client, [run(flops=six_nd * 1.5), run(flops=six_nd * 3), run(flops=six_nd / 5)])
    warnings = response.json()["warnings"]
    assert [(w["code"], w["row"]) for w in warnings] == [
        ("flops_disagree_6nd", 1),
        ("flops_disagree_6nd", 2),
    ]
    assert "factor of 3" in warnings[0]["message"]


def test_batch_limit_names_the_limit(client: TestClient) -> None:
    make_experiment(client)
    response = post(client, [run() for _ in range(10_001)])
    assert response.status_code == 422
    assert "10000" in response.json()["error"]["message"]


def test_provenance_is_pinned_per_experiment(client: TestClient) -> None:
    make_experiment(client)
    tagged = {"corpus_hash": "c1", "tokenizer_hash": "t1"}
    assert post(client, [run(metadata=tagged)]).status_code == 201
    assert client.get("/v1/experiments/exp").json()["corpus_hash"] == "c1"
    mixed = post(client, [run(metadata=tagged), run(metadata={**tagged, "corpus_hash": "c2"})])
    assert mixed.status_code == 422
    assert mixed.json()["error"]["code"] == "provenance_mismatch"
    assert mixed.json()["error"]["details"]["rows"] == [1]
    inside = post(client, [run(metadata={"tokenizer_hash": "t9"})], name="exp")
    assert inside.status_code == 422
    assert len(all_runs(client)) == 1


def test_filters_and_keyset_pages(client: TestClient) -> None:
    make_experiment(client)
    runs = [run(params=10.0**k, tokens=10.0 ** (k + 1), run_key=f"k{k}") for k in range(1, 9)]
    runs[2]["source"] = "other"
    post(client, runs)
    assert [r["params"] for r in all_runs(client, params_min=1e3, params_max=1e5)] == [
        1e3,
        1e4,
        1e5,
    ]
    assert [r["run_key"] for r in all_runs(client, source="other")] == ["k3"]
    flops_min = 6.0 * 1e6 * 1e7
    assert all(r["flops"] >= flops_min for r in all_runs(client, flops_min=flops_min))
    assert len(all_runs(client, tokens_max=1e4)) == 3

    seen, token = [], None
    while True:
        params: dict[str, Any] = {"limit": 3, "params_min": 100}
        if token:
            params["page_token"] = token
        page = client.get("/v1/experiments/exp/runs", params=params).json()
        seen += [r["run_key"] for r in page["items"]]
        token = page["next_page_token"]
        if not token:
            break
    assert seen == [f"k{k}" for k in range(2, 9)]
    first = client.get("/v1/experiments/exp/runs", params={"limit": 3}).json()
    other_filter = client.get(
        "/v1/experiments/exp/runs",
        params={"limit": 3, "params_min": 5, "page_token": first["next_page_token"]},
    )
    assert other_filter.status_code == 422
    assert (
        client.get(
            "/v1/experiments/exp/runs", params={"params_min": 9, "params_max": 1}
        ).status_code
        == 422
    )


def test_run_filters_are_the_fit_selection_s_ranges(client: TestClient) -> None:
    # One definition (RunFilter): a range bound is a positive finite number, as in a fit's filters.
    make_experiment(client)
    for bad in ({"params_min": 0}, {"flops_max": -1}, {"tokens_min": "inf"}):
        response = client.get("/v1/experiments/exp/runs", params=bad)
        assert response.status_code == 422, bad
        assert response.json()["error"]["code"] == "validation_error"
    fit = client.post("/v1/experiments/exp/fits", json={"filters": {"params_min": 0}})
    assert fit.status_code == 422


def test_exclude_with_reason_then_include(client: TestClient) -> None:
    make_experiment(client)
    run_id = post(client, [run()]).json()["runs"][0]["id"]
    assert client.patch(f"/v1/runs/{run_id}", json={"excluded": True}).status_code == 422
    excluded = client.patch(f"/v1/runs/{run_id}", json={"excluded": True, "reason": "diverged"})
    assert excluded.json()["excluded"] is True
    assert excluded.json()["excluded_reason"] == "diverged"
    assert all_runs(client, excluded=False) == []
    assert len(all_runs(client, excluded=True)) == 1
    included = client.patch(f"/v1/runs/{run_id}", json={"excluded": False}).json()
    assert (included["excluded"], included["excluded_reason"]) == (False, None)
    assert client.patch("/v1/runs/999999", json={"excluded": False}).status_code == 404


def test_ten_thousand_runs_in_one_batch(client: TestClient) -> None:
    make_experiment(client)
    runs = [run(params=1e6 + i, run_key=f"r{i}") for i in range(10_000)]
    response = post(client, runs)
    assert response.status_code == 201
    ids = [r["id"] for r in response.json()["runs"]]
    assert len(set(ids)) == 10_000
    assert client.get("/v1/experiments/exp").json()["run_count"] == 10_000
    page = client.get("/v1/experiments/exp/runs", params={"limit": 1, "params_min": 1e6 + 9999})
    assert page.json()["items"][0]["id"] == ids[-1]


def test_numbers_on_the_wire_are_json_numbers(client: TestClient) -> None:
    """ "1e8" strings, booleans and 5,000-digit integers are refused (422), not coerced."""
    make_experiment(client)
    good = {"params": 1e8, "tokens": 2e9, "loss": 3.0}
    for field, value in (
        ("params", "1e8"),
        ("tokens", True),
        ("loss", "3.0"),
        ("params", "HUGE"),
        ("seed", "7"),
        ("seed", 1.5),
    ):
        body = json.dumps({"runs": [{**good, field: value}]})
        if value == "HUGE":  # a 5,000-digit integer, spelt as JSON (json.dumps refuses it)
            body = body.replace('"HUGE"', "1" + "0" * 5000)
        response = client.post(
            "/v1/experiments/exp/runs",
            content=body,
            headers={"content-type": "application/json"},
        )
        assert response.status_code == 422, (field, value, response.text[:200])
    jsonl = json.dumps({**good, "params": "1e8"})
    lines = client.post(
        "/v1/experiments/exp/runs:import",
        content=jsonl,
        headers={"content-type": "application/x-ndjson"},
    )
    assert lines.status_code == 422
    assert client.get("/v1/experiments/exp").json()["run_count"] == 0
