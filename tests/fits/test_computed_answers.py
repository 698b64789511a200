"""With the answer cache off, a question asked again still reads the fit in force, but its
answer is computed again only when that read finds another source than the last answer's."""

from dataclasses import fields, replace
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.fits import recommend
from service.fits.hyperparams import ExperimentModel
from service.fits.recommend import PRESET_MODEL, ResolvedSource
from service.scaling import preset
from service.schemas.recommendations import SourceOut
from service.settings import Settings
from tests.conftest import ADMIN_TOKEN, grid_runs, make_experiment


def test_same_as_compares_every_field() -> None:
    # A field added to either class must be compared in ResolvedSource.same_as (then here).
    assert [f.name for f in fields(ResolvedSource)] == [
        "source",
        "out",
        "model",
        "params_convention",
        "data",
    ]
    assert [f.name for f in fields(ExperimentModel)] == [
        "vocab_size",
        "context_tokens",
        "notes",
        "fitted",
        "flops_convention",
    ]
    source = ResolvedSource(
        preset("chinchilla-2022"), SourceOut(kind="preset", preset="chinchilla-2022"), PRESET_MODEL
    )
    assert source.same_as(replace(source, out=source.out.model_copy()))
    assert not source.same_as(replace(source, source=preset("chinchilla-2022-tex")))
    assert not source.same_as(replace(source, out=source.out.model_copy(update={"stale": True})))
    assert not source.same_as(replace(source, model=replace(PRESET_MODEL, vocab_size=1000)))
    assert not source.same_as(replace(source, params_convention="non-embedding"))
    assert not source.same_as(replace(source, data="another corpus"))


def test_an_answer_is_computed_again_only_when_its_source_changed(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    computed: list[float] = []
    real_answer = recommend.answer

    def counted(resolved: ResolvedSource, budget: Any, *args: Any) -> Any:
        computed.append(budget.flops)
        return real_answer(resolved, budget, *args)

    monkeypatch.setattr(recommend, "answer", counted)
    with TestClient(create_app(settings.model_copy(update={"answer_cache_seconds": 0}))) as c:
        c.headers["Authorization"] = f"Bearer {ADMIN_TOKEN}"

        def ask(flops: float = 1e21) -> dict[str, Any]:
            response = c.get("/v1/experiments/grid/recommendation", params={"flops": flops})
            assert response.status_code == 200, response.text
            body: dict[str, Any] = response.json()
            return body

        make_experiment(c, "grid")
        assert c.post("/v1/experiments/grid/runs", json={"runs": grid_runs()}).status_code == 201
        fitted = c.post("/v1/experiments/grid/fits", json={"bootstrap": 10, "seed": 1})
        assert fitted.status_code == 201, fitted.text
        first = ask()
        assert ask() == first and computed == [1e21]  # read again, not computed again
        ask(2e21)
        assert computed == [1e21, 2e21]  # another question

        # New runs make the fit stale: a new source, a new answer (then kept).
        assert c.post("/v1/experiments/grid/runs", json={"runs": grid_runs("m")}).status_code == 201
        stale = ask()
        assert stale["source"]["stale"] is True and len(computed) == 3
        assert ask() == stale and len(computed) == 3

        # The experiment's vocabulary changes the shape, not the fit.
        patched = c.patch("/v1/experiments/grid", json={"metadata": {"vocab_size": 1000}})
        assert patched.status_code == 200, patched.text
        shaped = ask()
        assert len(computed) == 4 and shaped["shape"] != stale["shape"]

        refit = c.post("/v1/experiments/grid/fits", json={"bootstrap": 10, "seed": 2})
        assert refit.status_code == 201, refit.text
        assert ask()["source"]["fit_id"] == refit.json()["id"] and len(computed) == 5
