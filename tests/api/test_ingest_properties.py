"""Properties of ingestion: an accepted batch reads back exactly, a refused one stores nothing,
replays never duplicate; and no NaN or infinity reaches the store through any route."""

import itertools
import json
import math
import os
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import make_experiment

_names = itertools.count()

text = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=8)
json_leaf = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | text
)
json_value = st.recursive(
    json_leaf,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=6,
)
positive = st.floats(min_value=1e-300, max_value=1e300)
# Mostly valid numbers, sometimes one the API must refuse (zero, negative, NaN, infinity).
number = positive | st.sampled_from([0.0, -1.0, math.nan, math.inf])
run = st.fixed_dictionaries(
    {"params": number, "tokens": number, "loss": number},
    optional={
        "run_key": st.sampled_from(["a", "b", "c", "d", "e"]),
        "flops": number,
        "seed": st.integers(-(2**63), 2**63 - 1),
        "source": st.sampled_from(["api", "sweep"]),
        "metadata": st.dictionaries(text, json_value, max_size=3),
        "hyperparameters": st.dictionaries(text, json_value, max_size=2),
    },
)
batches = st.lists(run, min_size=1, max_size=6)
moderate = st.floats(min_value=1e-3, max_value=1e15)
valid_run = st.fixed_dictionaries(
    {"params": moderate, "tokens": moderate, "loss": moderate},
    optional={"run_key": st.sampled_from(["a", "b", "c", "d", "e"]), "flops": moderate},
)
valid_batches = st.lists(
    valid_run, min_size=1, max_size=6, unique_by=lambda r: r.get("run_key", str(id(r)))
)
HYPOTHESIS = settings(
    max_examples=int(os.environ.get("PROPERTY_EXAMPLES", "60")),
    deadline=None,
    derandomize=not os.environ.get("PROPERTY_RANDOM"),
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def post(client: TestClient, name: str, runs: list[dict[str, Any]], **headers: str) -> Any:
    # json.dumps writes NaN and Infinity literals; the API must refuse them.
    content = json.dumps({"runs": runs})
    return client.post(
        f"/v1/experiments/{name}/runs",
        content=content,
        headers={"content-type": "application/json", **headers},
    )


def stored(client: TestClient, name: str) -> list[dict[str, Any]]:
    page = client.get(f"/v1/experiments/{name}/runs", params={"limit": 1000})
    assert page.status_code == 200, page.text
    items: list[dict[str, Any]] = page.json()["items"]
    return items


def same_json(got: Any, sent: Any) -> bool:
    """Equal as JSON values. JSON has one number type: PostgreSQL's jsonb keeps the decimal
    value but writes an integral float such as 2.251799813685243e16 as 22517998136852430, which
    parses as an int; converted back it is the same float, bit for bit."""
    numbers = (int, float)
    if isinstance(sent, float) and isinstance(got, numbers) and not isinstance(got, bool):
        return float(got) == sent
    if isinstance(sent, dict):
        return (
            isinstance(got, dict)
            and got.keys() == sent.keys()
            and all(same_json(got[k], sent[k]) for k in sent)
        )
    if isinstance(sent, list):
        return (
            isinstance(got, list)
            and len(got) == len(sent)
            and all(same_json(g, v) for g, v in zip(got, sent, strict=True))
        )
    return type(got) is type(sent) and bool(got == sent)


def assert_reads_back(sent: dict[str, Any], got: dict[str, Any]) -> None:
    for field in ("params", "tokens", "loss"):
        assert got[field] == sent[field], field
    if "flops" in sent:
        assert (got["flops"], got["flops_derived"]) == (sent["flops"], False)
    else:
        assert (got["flops"], got["flops_derived"]) == (6.0 * sent["params"] * sent["tokens"], True)
    assert got["run_key"] == sent.get("run_key")
    assert got["seed"] == sent.get("seed")
    assert got["source"] == sent.get("source", "api")
    assert same_json(got["metadata"], sent.get("metadata", {}))
    assert same_json(got["hyperparameters"], sent.get("hyperparameters", {}))
    assert got["excluded"] is False


def _valid(runs: list[dict[str, Any]]) -> bool:
    numbers = [r[f] for r in runs for f in ("params", "tokens", "loss", "flops") if f in r]
    keys = [r["run_key"] for r in runs if "run_key" in r]
    finite = all(math.isfinite(x) and x > 0 for x in numbers)
    flops_ok = all(0 < 6.0 * r["params"] * r["tokens"] < math.inf for r in runs if "flops" not in r)
    return finite and flops_ok and len(keys) == len(set(keys))


@given(runs=batches)
@HYPOTHESIS
def test_accepted_batch_reads_back_exactly_refused_stores_nothing(
    client: TestClient, runs: list[dict[str, Any]]
) -> None:
    name = f"p{next(_names)}"
    make_experiment(client, name)
    response = post(client, name, runs)
    if response.status_code == 201:
        got = stored(client, name)
        assert len(got) == len(runs)
        by_id = {run["id"]: run for run in got}
        for sent, status in zip(runs, response.json()["runs"], strict=True):
            assert status["status"] == "created"
            assert_reads_back(sent, by_id[status["id"]])
    else:
        assert response.status_code == 422, response.text
        assert stored(client, name) == []
    assert (response.status_code == 201) == _valid(runs), response.text


@given(runs=valid_batches)
@HYPOTHESIS
def test_replays_never_duplicate(client: TestClient, runs: list[dict[str, Any]]) -> None:
    name = f"q{next(_names)}"
    make_experiment(client, name)
    keyed = [r for r in runs if "run_key" in r]
    first = post(client, name, runs, **{"Idempotency-Key": f"k-{name}"})
    assert first.status_code == 201, first.text
    replay = post(client, name, runs, **{"Idempotency-Key": f"k-{name}"})
    assert replay.status_code == 201
    assert replay.headers.get("idempotent-replayed") == "true"
    assert replay.json() == first.json()
    if keyed:  # by run_key alone, without the header
        again = post(client, name, keyed)
        assert again.status_code == 200, again.text
        assert {s["status"] for s in again.json()["runs"]} == {"existing"}
    assert len(stored(client, name)) == len(runs)


NON_FINITE = ["NaN", "Infinity", "-Infinity", "nan", "inf", "1e999"]


@pytest.mark.parametrize("literal", NON_FINITE)
def test_no_nan_or_infinity_is_stored_through_any_route(client: TestClient, literal: str) -> None:
    make_experiment(client, "exp")
    for field in ("params", "tokens", "loss", "flops", "unique_tokens"):
        values = {"params": "1e8", "tokens": "1e9", "loss": "2.5", field: literal}
        body = "{" + ", ".join(f'"{k}": {v}' for k, v in values.items()) + "}"
        batch = client.post(
            "/v1/experiments/exp/runs",
            content='{"runs": [' + body + "]}",
            headers={"content-type": "application/json"},
        )
        assert batch.status_code == 422, (field, literal, batch.text)
        jsonl = client.post(
            "/v1/experiments/exp/runs:import",
            content=body + "\n",
            headers={"content-type": "application/x-ndjson"},
        )
        assert jsonl.status_code == 422, (field, literal, jsonl.text)
        header = ",".join(values)
        csv = client.post(
            "/v1/experiments/exp/runs:import",
            content=f"{header}\n{','.join(values.values())}\n",
            headers={"content-type": "text/csv"},
        )
        assert csv.status_code == 422, (field, literal, csv.text)
        assert csv.json()["error"]["details"]["errors"][0]["row"] == 0
    assert stored(client, "exp") == []
