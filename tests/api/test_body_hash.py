"""Body hashes stay what they were: RunIn.identity builds them from the validated fields, and
stored runs (hashed from `model_dump(mode="json")` before) must still match re-posted bodies."""

import datetime as dt
import hashlib
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from service.ingest.batch import body_hash
from service.schemas.runs import RunIn
from tests.api.test_ingest_properties import HYPOTHESIS, json_value, moderate, text

DEFAULTS = {"loss_provenance": "end_of_schedule", "cooldown_fraction": None, "trunk_key": None}


def dumped_hash(run: RunIn) -> str:
    """How body hashes were made before RunIn.identity read the fields directly."""
    fields = run.model_dump(mode="json")
    identity = {
        name: value
        for name, value in fields.items()
        if not (name == "curve" and value is None) and DEFAULTS.get(name, ...) != value
    }
    return hashlib.sha256(orjson.dumps(identity, option=orjson.OPT_SORT_KEYS)).hexdigest()


curve = st.integers(1, 4).flatmap(
    lambda n: st.fixed_dictionaries(
        {
            "tokens": st.lists(moderate, min_size=n, max_size=n, unique=True).map(sorted),
            "loss": st.lists(moderate, min_size=n, max_size=n),
        }
    )
)
number = moderate | st.integers(1, 10**12)  # integers are valid floats on the wire
body = st.fixed_dictionaries(
    {"params": number, "tokens": st.just(1e16), "loss": number},
    optional={
        "run_key": text.filter(bool),
        "flops": number,
        "unique_tokens": number,
        "seed": st.integers(-(2**63), 2**63 - 1),
        "source": st.sampled_from(["api", "sweep"]),
        "metadata": st.dictionaries(text, json_value, max_size=3),
        "hyperparameters": st.dictionaries(text, json_value, max_size=2),
        "loss_provenance": st.sampled_from(["end_of_schedule", "mid_schedule"]),
        "trunk_key": text.filter(bool),
        "curve": curve,
    },
)


@HYPOTHESIS
@given(body)
def test_the_hash_of_a_posted_body_is_the_dumped_fields_hash(sent: dict[str, Any]) -> None:
    run = RunIn.model_validate_json(orjson.dumps(sent))
    assert body_hash(run) == dumped_hash(run)
    # The same body sent as Python objects (file imports, the worker) hashes alike.
    assert body_hash(RunIn.model_validate(sent)) == body_hash(run)


def test_a_known_body_keeps_its_hash() -> None:
    """Pinned (computed by the code before RunIn.identity read the fields directly, 47aace0):
    runs stored by earlier versions are found `existing`, not refused with 409."""
    sent = {
        "run_key": "r1",
        "params": 4e8,
        "tokens": 8000000000,
        "loss": 2.71,
        "seed": 3,
        "metadata": {"corpus_hash": "c1", "tags": ["a", 1, 2.5, None, True]},
        "curve": {"tokens": [1e9, 8e9], "loss": [3.2, 2.71]},
    }
    digest = "4d2b58f985cd260280dae1ed7303eda4077b280d42d93ad5b0151dba10a1cecc"
    assert body_hash(RunIn.model_validate_json(orjson.dumps(sent))) == digest


@settings(HYPOTHESIS, max_examples=20)
@given(st.datetimes(timezones=st.just(dt.UTC)), st.tuples(st.integers(0, 9), text))
def test_python_values_are_kept_as_their_json(when: dt.datetime, pair: tuple[int, str]) -> None:
    """A Python caller's dates and tuples are stored and hashed as the JSON they write."""
    run = RunIn.model_validate(
        {"params": 1e8, "tokens": 2e9, "loss": 3.0, "metadata": {"at": when, "pair": pair}}
    )
    as_json = orjson.loads(orjson.dumps({"at": when, "pair": pair}))
    assert run.metadata == as_json
    assert body_hash(run) == body_hash(
        RunIn.model_validate_json(
            orjson.dumps({"params": 1e8, "tokens": 2e9, "loss": 3.0, "metadata": as_json})
        )
    )


@pytest.mark.parametrize(
    "value",
    [object(), {1, 2}, {1: "a"}, float("nan"), 2**64, "nul\x00"],
    ids=["object", "set", "int-key", "nan", "2**64", "nul"],
)
def test_what_json_cannot_hold_is_refused_from_python_callers(value: object) -> None:
    with pytest.raises(ValidationError) as refused:
        RunIn.model_validate({"params": 1e8, "tokens": 2e9, "loss": 3.0, "metadata": {"v": value}})
    assert refused.value.errors()[0]["loc"] == ("metadata",)
