"""The collector pause around large batches: counted across threads, restored as it was."""

import gc
import threading
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from service.ingest import batch
from service.ingest.collector import collector_paused
from tests.conftest import make_experiment


@pytest.fixture
def collector_on() -> Iterator[None]:
    was = gc.isenabled()
    gc.enable()
    yield
    if not was:
        gc.disable()


@pytest.mark.usefixtures("collector_on")
def test_pauses_overlap_and_the_last_one_turns_it_back_on() -> None:
    first_in, second_done = threading.Event(), threading.Event()
    seen: list[bool] = []

    def first() -> None:
        with collector_paused():
            first_in.set()
            second_done.wait(10)
            seen.append(gc.isenabled())  # the second pause ended, this one still holds

    thread = threading.Thread(target=first)
    thread.start()
    first_in.wait(10)
    with collector_paused():
        seen.append(gc.isenabled())
    second_done.set()
    thread.join(10)
    assert seen == [False, False]
    assert gc.isenabled()
    with pytest.raises(RuntimeError), collector_paused():
        raise RuntimeError("a failing batch")
    assert gc.isenabled()


@pytest.mark.usefixtures("collector_on")
def test_a_collector_switched_off_by_the_operator_stays_off() -> None:
    gc.disable()
    with collector_paused():
        pass
    assert not gc.isenabled()


@pytest.mark.usefixtures("collector_on")
def test_batches_and_imports_are_stored_with_the_collector_paused(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_experiment(client, "exp")
    states: list[bool] = []
    real = batch.ingest_runs

    def spy(*args: object, **kwargs: object) -> object:
        states.append(gc.isenabled())
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr("service.api.routes.runs.ingest_runs", spy)
    run = {"params": 1e8, "tokens": 2e9, "loss": 3.0}
    assert client.post("/v1/experiments/exp/runs", json={"runs": [run]}).status_code == 201
    imported = client.post(
        "/v1/experiments/exp/runs:import",
        content=b"params,tokens,loss\n2e8,4e9,2.9\n",
        headers={"content-type": "text/csv"},
    )
    assert imported.status_code == 201, imported.text
    assert states == [False, False]
    assert gc.isenabled()
