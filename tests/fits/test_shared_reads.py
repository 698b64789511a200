"""Questions queued for the answer thread share a read that began after they were asked, and
never one that began before."""

from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.fits.recommend import current_answer_json
from service.fits.shared_reads import SharedReads
from service.schemas.recommendations import BudgetSpec, ConstraintsSpec
from service.settings import Settings
from tests.conftest import ADMIN_TOKEN, grid_runs, make_experiment


class Reads:
    """A read that counts its calls and returns their number."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> int:
        self.calls += 1
        return self.calls


def test_questions_asked_before_a_read_began_share_it() -> None:
    shared: SharedReads[int] = SharedReads()
    read = Reads()
    first, second = shared.ask(), shared.ask()
    assert shared.read(first, "exp", read) == 1
    assert shared.read(second, "exp", read) == 1  # asked before the first read began
    assert read.calls == 1
    third = shared.ask()  # asked after that read began: it reads again
    assert shared.read(third, "exp", read) == 2
    assert shared.read(first, "exp", read) == 2  # a later read serves an earlier question too
    assert shared.read(shared.ask(), "other", read) == 3  # each key reads for itself


def test_a_question_asked_while_a_read_runs_does_not_get_it() -> None:
    shared: SharedReads[int] = SharedReads()
    during: list[int] = []

    def read() -> int:
        during.append(shared.ask())
        return len(during)

    assert shared.read(shared.ask(), "exp", read) == 1
    assert shared.read(during[0], "exp", read) == 2


def test_a_failed_read_is_not_kept_and_old_reads_are_dropped() -> None:
    shared: SharedReads[int] = SharedReads(capacity=2)
    asked = shared.ask()

    def fail() -> int:
        raise LookupError("no fit")

    with pytest.raises(LookupError):
        shared.read(asked, "exp", fail)
    read = Reads()
    assert shared.read(asked, "exp", read) == 1
    shared.read(asked, "b", read)
    shared.read(asked, "c", read)  # "exp" is the oldest of three: dropped
    assert shared.read(asked, "exp", read) == 4


def test_a_write_after_a_question_is_seen_by_it_and_by_later_ones(settings: Settings) -> None:
    # Uncached answers (answer cache off) through the app's own session factory and fit cache.
    with TestClient(create_app(settings.model_copy(update={"answer_cache_seconds": 0}))) as c:
        c.headers["Authorization"] = f"Bearer {ADMIN_TOKEN}"
        make_experiment(c, "grid")
        assert c.post("/v1/experiments/grid/runs", json={"runs": grid_runs()}).status_code == 201
        assert c.post("/v1/experiments/grid/fits", json={"bootstrap": 10}).status_code == 201
        state: Any = c.app.state  # type: ignore[attr-defined]
        shared: SharedReads[Any] = SharedReads()

        def stale(asked: int) -> bool:
            body = current_answer_json(
                state.session_factory,
                "grid",
                "chinchilla",
                "parametric",
                BudgetSpec(flops=1e21),
                ConstraintsSpec(),
                0.9,
                state.fit_cache,
                shared=shared,
                asked=asked,
            )
            return bool(orjson.loads(body)["source"]["stale"])

        before = shared.ask()
        assert stale(before) is False
        # New runs make the fit stale. A question asked after the read above must not get it.
        more = c.post("/v1/experiments/grid/runs", json={"runs": grid_runs("more")})
        assert more.status_code == 201, more.text
        after = shared.ask()
        assert stale(after) is True
        assert stale(before) is True  # the newer read serves the older question too
