"""How each loss was obtained, trunks and loss curves over HTTP, on each backend: defaults,
validation (422, nothing stored), the curve's round trip, and fits that leave mid-schedule
losses out and say so."""

import hashlib
from typing import Any

import orjson
import sqlalchemy as sa
from fastapi.testclient import TestClient

from service.ingest.batch import body_hash
from service.schemas.runs import RunIn
from service.settings import Settings
from tests.conftest import grid_runs, make_experiment


def run(**fields: Any) -> dict[str, Any]:
    return {"params": 1.0e8, "tokens": 2.0e9, "loss": 3.0, **fields}


def post(client: TestClient, runs: list[dict[str, Any]], name: str = "exp") -> Any:
    return client.post(f"/v1/experiments/{name}/runs", json={"runs": runs})


def stored_counts(settings: Settings) -> tuple[int, int]:
    engine = sa.create_engine(settings.database_url)
    with engine.connect() as connection:
        runs = connection.execute(sa.text("SELECT count(*) FROM runs")).scalar_one()
        curves = connection.execute(sa.text("SELECT count(*) FROM run_curves")).scalar_one()
    engine.dispose()
    return runs, curves


# Values whose decimal text would not survive a float32 or a rounding: the store is exact.
CURVE = {
    "tokens": [1e8 / 3, 2e8 / 3, 1e9 / 7, 4e8, 2.0e9],
    "loss": [5.0 / 3, 4.1 / 3, 3.3333333333333335, 3.1415926535897936, 3.0],
}


def test_provenance_defaults_filters_and_curve_round_trip(client: TestClient) -> None:
    make_experiment(client)
    response = post(
        client,
        [
            run(run_key="plain"),
            run(
                run_key="branch",
                loss_provenance="after_cooldown",
                cooldown_fraction=0.2,
                trunk_key="trunk-100m",
                curve=CURVE,
            ),
            run(run_key="checkpoint", loss_provenance="mid_schedule", trunk_key="trunk-100m"),
        ],
    )
    assert response.status_code == 201, response.text
    plain, branch, checkpoint = (r["id"] for r in response.json()["runs"])

    shown = client.get(f"/v1/runs/{plain}").json()
    assert (shown["loss_provenance"], shown["cooldown_fraction"], shown["trunk_key"]) == (
        "end_of_schedule",
        None,
        None,
    )
    assert (shown["curve_points"], shown["curve"]) == (0, None)
    assert client.get(f"/v1/runs/{plain}", params={"include": "curve"}).json()["curve"] is None

    without = client.get(f"/v1/runs/{branch}").json()
    assert (without["curve_points"], without["curve"]) == (5, None)
    assert without["cooldown_fraction"] == 0.2
    with_curve = client.get(f"/v1/runs/{branch}", params={"include": "curve"}).json()
    assert with_curve["curve"] == CURVE  # every float exactly as sent

    listed = client.get("/v1/experiments/exp/runs", params={"trunk_key": "trunk-100m"}).json()
    assert [r["id"] for r in listed["items"]] == [branch, checkpoint]
    mid = client.get("/v1/experiments/exp/runs", params={"loss_provenance": "mid_schedule"}).json()
    assert [r["id"] for r in mid["items"]] == [checkpoint]
    bad = client.get("/v1/experiments/exp/runs", params={"loss_provenance": "halfway"})
    assert bad.status_code == 422

    # The same body again is `existing`: curves are part of what a run_key pins.
    again = post(
        client,
        [
            run(
                run_key="branch",
                loss_provenance="after_cooldown",
                cooldown_fraction=0.2,
                trunk_key="trunk-100m",
                curve=CURVE,
            )
        ],
    )
    assert again.status_code == 200, again.text
    changed = {**CURVE, "loss": [*CURVE["loss"][:-1], 2.9]}
    conflict = post(
        client,
        [
            run(
                run_key="branch",
                loss_provenance="after_cooldown",
                cooldown_fraction=0.2,
                trunk_key="trunk-100m",
                curve=changed,
            )
        ],
    )
    assert conflict.status_code == 409


INVALID: dict[str, tuple[dict[str, Any], str]] = {
    "unknown provenance": (run(loss_provenance="halfway"), "loss_provenance"),
    "cooldown without fraction": (run(loss_provenance="after_cooldown"), "cooldown_fraction"),
    "fraction without cooldown": (run(cooldown_fraction=0.2), "only for after_cooldown"),
    "fraction above 1": (
        run(loss_provenance="after_cooldown", cooldown_fraction=1.5),
        "cooldown_fraction",
    ),
    "tokens not increasing": (
        run(curve={"tokens": [1e8, 3e8, 2e8], "loss": [4.0, 3.5, 3.2]}),
        "strictly increase",
    ),
    "lengths differ": (run(curve={"tokens": [1e8, 2e8], "loss": [4.0]}), "pair up"),
    "negative loss": (run(curve={"tokens": [1e8, 2e8], "loss": [4.0, -1.0]}), "curve.loss"),
    "loss as text": (run(curve={"tokens": [1e8], "loss": ["4.0"]}), "curve.loss"),
    "past the run's tokens": (
        run(curve={"tokens": [1e9, 3e9], "loss": [4.0, 3.0]}),
        "past the run's",
    ),
    "too many points": (
        run(
            tokens=2e9,
            curve={"tokens": [float(i + 1) for i in range(10_001)], "loss": [3.0] * 10_001},
        ),
        "at most 10000",
    ),
    "empty curve": (run(curve={"tokens": [], "loss": []}), "curve.tokens"),
}


def test_invalid_provenance_or_curve_is_422_and_stores_nothing(
    client: TestClient, settings: Settings
) -> None:
    make_experiment(client)
    for case, (body, words) in INVALID.items():
        # A valid run in the same batch is not stored either: all or nothing.
        response = post(client, [run(run_key="fine", curve=CURVE), body])
        assert response.status_code == 422, case
        assert words in response.text, case
        assert stored_counts(settings) == (0, 0), case


def test_a_fit_leaves_mid_schedule_losses_out_and_says_so(client: TestClient) -> None:
    make_experiment(client)
    assert post(client, grid_runs()).status_code == 201
    # Checkpoints of longer runs: their losses sit above the surface (the LR never decayed).
    checkpoints = [
        run(
            run_key=f"mid-{i}",
            params=p,
            tokens=d,
            loss=2.0 + 600 / p**0.34 + 600 / d**0.28,
            loss_provenance="mid_schedule",
        )
        for i, (p, d) in enumerate([(3e7, 2e9), (1e8, 5e9), (3e8, 2e10)])
    ]
    mid_ids = [r["id"] for r in post(client, checkpoints).json()["runs"]]

    body = client.post("/v1/experiments/exp/fits", json={}).json()
    assert body["status"] == "succeeded", body
    assert body["n_runs"] == 20
    assert not set(mid_ids) & set(body["run_ids"])
    assert body["dropped_runs"] == [
        {
            "reason": "mid_schedule",
            "count": 3,
            "message": body["dropped_runs"][0]["message"],
            "run_ids": mid_ids,
        }
    ]
    assert any("3 run(s) left out" in w and "mid-schedule" in w for w in body["warnings"])
    assert client.get(f"/v1/fits/{body['id']}").json()["dropped_runs"] == body["dropped_runs"]

    everything = client.post("/v1/experiments/exp/fits", json={"include_mid_schedule": True}).json()
    assert everything["status"] == "succeeded", everything
    assert (everything["n_runs"], everything["dropped_runs"]) == (23, [])
    assert everything["settings"]["include_mid_schedule"] is True


def test_jsonl_import_carries_provenance_trunk_and_curve(client: TestClient) -> None:
    make_experiment(client)
    lines = [
        '{"params": 1e8, "tokens": 2e9, "loss": 3.0, "run_key": "a", "loss_provenance": '
        '"after_cooldown", "cooldown_fraction": 0.2, "trunk_key": "t1", '
        '"curve": {"tokens": [1e9, 2e9], "loss": [3.4, 3.0]}}',
        '{"params": 1e8, "tokens": 1e9, "loss": 3.3, "run_key": "b", "trunk key": "t1"}',
    ]
    response = client.post(
        "/v1/experiments/exp/runs:import",
        content="\n".join(lines),
        headers={"content-type": "application/x-ndjson"},
    )
    assert response.status_code == 201, response.text
    first, second = (r["id"] for r in response.json()["runs"])
    a = client.get(f"/v1/runs/{first}", params={"include": "curve"}).json()
    assert (a["loss_provenance"], a["cooldown_fraction"], a["trunk_key"]) == (
        "after_cooldown",
        0.2,
        "t1",
    )
    assert a["curve"] == {"tokens": [1e9, 2e9], "loss": [3.4, 3.0]}
    b = client.get(f"/v1/runs/{second}").json()
    assert (b["loss_provenance"], b["trunk_key"]) == ("end_of_schedule", "t1")


def test_csv_import_refuses_an_unknown_provenance(client: TestClient, settings: Settings) -> None:
    make_experiment(client)
    text = "params,tokens,loss,loss_provenance\n1e8,2e9,3.0,end_of_schedule\n1e8,4e9,2.9,peak\n"
    response = client.post(
        "/v1/experiments/exp/runs:import", content=text, headers={"content-type": "text/csv"}
    )
    assert response.status_code == 422
    assert response.json()["error"]["details"]["errors"][0]["field"] == "loss_provenance"
    assert stored_counts(settings) == (0, 0)


def test_a_run_without_the_new_fields_hashes_as_before() -> None:
    """Runs stored before provenance existed keep their body hash: re-posting one is
    `existing`, not a 409, and a re-imported file derives the same run keys."""
    sent = {"run_key": "k", "params": 1e8, "tokens": 2e9, "loss": 3.0, "metadata": {"a": 1}}
    before = RunIn.model_validate(sent).model_dump(
        exclude={"loss_provenance", "cooldown_fraction", "trunk_key", "curve"}
    )
    assert (
        body_hash(RunIn.model_validate(sent))
        == hashlib.sha256(orjson.dumps(before, option=orjson.OPT_SORT_KEYS)).hexdigest()
    )
    said = RunIn.model_validate({**sent, "loss_provenance": "mid_schedule"})
    assert body_hash(said) != body_hash(RunIn.model_validate(sent))
