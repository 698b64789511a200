"""ScalingClient against the real app over loopback HTTP: every method, errors, pagination."""

import pytest

from service.client import (
    ApiError,
    AuthenticationError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    RunFilters,
    ScalingClient,
    ValidationError,
)
from service.schemas.experiments import ExperimentOut
from service.schemas.fits import FitOut
from service.schemas.recommendations import Recommendation
from service.schemas.runs import RunOut
from tests.client.conftest import EPOCH_CSV, EPOCH_MAX_LOSS, FAST_RETRY
from tests.conftest import ADMIN_TOKEN


def test_round_trip_every_method(server: str) -> None:
    with ScalingClient(server, ADMIN_TOKEN, retry=FAST_RETRY) as api:
        assert api.ready() == {"status": "ready"}
        created = api.create_experiment(
            "chinchilla", description="Epoch's extraction", metadata={"dataset": "MassiveText"}
        )
        assert isinstance(created, ExperimentOut)
        assert created.param_convention == "total"
        assert [e.name for e in api.list_experiments().items] == ["chinchilla"]
        patched = api.update_experiment("chinchilla", description="Hoffmann et al. Fig. 4")
        assert patched.description == "Hoffmann et al. Fig. 4"
        assert patched.metadata == {"dataset": "MassiveText"}

        imported = api.import_runs("chinchilla", EPOCH_CSV)
        assert (imported.rows, imported.created, imported.format) == (245, 245, "csv")
        api.create_experiment("scratch")
        jsonl = b'{"run_key": "j1", "params": 1e8, "tokens": 2e9, "loss": 3.1}\n'
        lines = api.import_runs("scratch", jsonl, format="jsonl")
        assert (lines.format, lines.created) == ("jsonl", 1)
        assert api.import_runs("scratch", jsonl, format="jsonl").existing == 1
        api.delete_experiment("scratch", force=True)
        batch = api.add_runs(
            "chinchilla",
            [{"run_key": "mine-1", "params": 4e8, "tokens": 8e9, "loss": 2.9, "source": "api"}],
        )
        assert batch.created == 1
        assert batch.runs[0].status == "created"
        replay = api.add_runs(
            "chinchilla",
            [{"run_key": "mine-1", "params": 4e8, "tokens": 8e9, "loss": 2.9, "source": "api"}],
        )
        assert (replay.created, replay.existing) == (0, 1)
        mine = api.get_run(batch.runs[0].id)
        assert isinstance(mine, RunOut)
        assert mine.flops == pytest.approx(6 * 4e8 * 8e9)
        assert mine.flops_derived

        runs = list(api.iter_runs("chinchilla", page_size=100))
        assert len(runs) == api.get_experiment("chinchilla").run_count
        assert len({r.id for r in runs}) == len(runs)
        big = api.list_runs("chinchilla", RunFilters(flops_min=1e21), limit=1000).items
        assert big
        assert all(r.flops >= 1e21 for r in big)
        excluded = api.exclude_run(mine.id, "not part of Fig. 4")
        assert excluded.excluded
        assert excluded.excluded_reason == "not part of Fig. 4"
        for run in runs:
            if run.loss >= EPOCH_MAX_LOSS:
                api.exclude_run(run.id, "Epoch's filter")
        assert api.include_run(mine.id).excluded is False
        api.exclude_run(mine.id, "not part of Fig. 4")
        assert len(list(api.iter_runs("chinchilla", RunFilters(excluded=True)))) == 6

        fit = api.create_fit("chinchilla", bootstrap=20, seed=1)
        assert isinstance(fit, FitOut)
        assert fit.status == "succeeded"
        assert fit.n_runs == 240
        assert fit.parameters is not None
        assert fit.parameters["alpha"] == pytest.approx(0.3473, abs=0.02)
        assert api.get_fit(fit.id).runs_sha256 == fit.runs_sha256
        assert api.wait_for(fit.id, timeout=5).id == fit.id
        assert api.current_fit("chinchilla").id == fit.id
        assert api.list_fits("chinchilla").items[0].id == fit.id
        assert fit.id in [f.id for f in api.iter_fits("chinchilla", page_size=1)]
        svg = api.plot(fit.id, "frontier")
        assert b"<svg" in svg[:500]
        assert api.plot_url(fit.id, "isoflop").endswith(f"/v1/fits/{fit.id}/plots/isoflop.svg")

        rec = api.recommend({"experiment": "chinchilla"}, {"flops": 5.88e23})
        assert isinstance(rec, Recommendation)
        assert rec.params * rec.tokens * 6 == pytest.approx(5.88e23, rel=1e-6)
        assert rec.source.fit_id == fit.id
        # Epoch's replication on these 240 runs: ~7.4e10 params, ~18 tokens per parameter.
        assert rec.params == pytest.approx(7.4e10, rel=0.05)
        assert rec.tokens_per_param == pytest.approx(17.9, rel=0.1)
        got = api.recommendation("chinchilla", 5.88e23)
        assert got.params == pytest.approx(rec.params, rel=1e-9)
        capped = api.recommendation("chinchilla", 5.88e23, max_params=1e10)
        assert capped.params <= 1e10 * (1 + 1e-9)
        assert capped.binding
        frontier = api.frontier("chinchilla", 1e20, 1e24, points=5)
        assert len(frontier) == 5
        assert [p.params for p in frontier] == sorted(p.params for p in frontier)
        compared = api.compare(
            [{"experiment": "chinchilla"}, {"preset": "epoch-2024"}, {"preset": "no-such"}],
            {"flops": 1e24},
        )
        rows = compared.rows
        assert compared.disagreement.answered == 2
        assert compared.disagreement.spreads["params"].ratio >= 1.0
        assert rows[0].recommendation is not None
        assert rows[1].recommendation is not None
        assert rows[1].source.preset == "epoch-2024"
        assert rows[2].recommendation is None
        assert rows[2].error is not None
        laws = api.laws()
        assert "chinchilla-2022" in [law.name for law in laws]
        kaplan = next(law for law in laws if law.name == "kaplan-2020")
        assert kaplan.law.law == "kaplan"
        assert kaplan.law.parameters["alpha_N"] == pytest.approx(0.076)
        hardware = {h.name: h for h in api.hardware()}
        assert hardware["H100-SXM"].peak_bf16_flops == pytest.approx(989.4e12)
        by_gpu = api.recommend(
            {"preset": "epoch-2024"}, {"gpu_hours": 1e5, "gpu": "H100-SXM", "mfu": 0.4}
        )
        assert by_gpu.flops == pytest.approx(1e5 * 989.4e12 * 0.4 * 3600, rel=1e-6)

        key = api.create_key("reader", ["read"])
        assert key.token.startswith("ss_")
        assert key.prefix in [k.prefix for k in api.list_keys()]
        with ScalingClient(server, key.token, retry=FAST_RETRY) as reader:
            assert reader.get_experiment("chinchilla").name == "chinchilla"
            with pytest.raises(PermissionDeniedError) as denied:
                reader.create_experiment("nope")
            assert denied.value.status == 403
        assert api.revoke_key(key.prefix).revoked_at is not None

        with pytest.raises(ConflictError) as not_empty:
            api.delete_experiment("chinchilla")
        assert not_empty.value.code == "experiment_not_empty"
        api.delete_experiment("chinchilla", force=True)
        with pytest.raises(NotFoundError):
            api.get_experiment("chinchilla")


def test_errors_carry_code_message_and_details(api: ScalingClient) -> None:
    with pytest.raises(NotFoundError) as missing:
        api.get_experiment("absent")
    assert missing.value.status == 404
    assert missing.value.code == "not_found"
    assert missing.value.request_id

    api.create_experiment("exp")
    with pytest.raises(ConflictError) as taken:
        api.create_experiment("exp")
    assert taken.value.status == 409

    with pytest.raises(ValidationError) as invalid:
        api.add_runs("exp", [{"params": 1e8, "tokens": 1e9, "loss": 3.0}, {"params": 1e8}])
    assert invalid.value.code == "validation_error"
    assert {d.get("row") for d in invalid.value.row_errors} == {1}

    api.add_runs("exp", [{"run_key": "k", "params": 1e8, "tokens": 1e9, "loss": 3.0}])
    with pytest.raises(ConflictError) as reused:
        api.add_runs("exp", [{"run_key": "k", "params": 1e8, "tokens": 1e9, "loss": 2.0}])
    assert reused.value.code == "run_key_conflict"

    with pytest.raises(ValidationError) as bad_file:
        api.import_runs("exp", "params,tokens,loss\n1e8,1e9,3\n1e8,oops,3\n-1,1e9,3\n")
    assert "nothing was stored" in bad_file.value.message
    assert sorted({e["row"] for e in bad_file.value.row_errors}) == [1, 2]
    assert isinstance(bad_file.value, ApiError)

    with pytest.raises(ApiError) as no_fit:
        api.recommendation("exp", 1e22)
    assert no_fit.value.status in (404, 422)

    with ScalingClient(api.url, "ss_wrongwrong01_" + "x" * 43) as stranger:
        with pytest.raises(AuthenticationError) as unknown:
            stranger.list_experiments()
        assert unknown.value.code == "unauthenticated"


def test_pagination_iterators_return_everything(api: ScalingClient) -> None:
    names = [f"exp-{i}" for i in range(7)]
    for name in names:
        api.create_experiment(name)
    first = api.list_experiments(limit=3)
    assert len(first.items) == 3
    assert first.next_page_token is not None
    assert [e.name for e in api.iter_experiments(page_size=2)] == names

    runs = [
        {"run_key": f"r{i}", "params": 1e8 * (i + 1), "tokens": 2e9, "loss": 3.0 - i / 100}
        for i in range(25)
    ]
    api.add_runs("exp-0", runs)
    listed = list(api.iter_runs("exp-0", page_size=4))
    assert sorted(str(r.run_key) for r in listed) == sorted(str(r["run_key"]) for r in runs)
    assert [r.id for r in listed] == sorted({r.id for r in listed})
    filtered = list(api.iter_runs("exp-0", RunFilters(params_min=1e9, params_max=2e9), page_size=3))
    assert sorted(r.params for r in filtered) == [1e8 * k for k in range(10, 21)]


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch, sqlite_server: str) -> None:
    monkeypatch.setenv("SCALING_URL", sqlite_server + "/")
    monkeypatch.setenv("SCALING_API_KEY", ADMIN_TOKEN)
    with ScalingClient() as api:
        assert api.url == sqlite_server
        assert api.list_experiments().items == []
    monkeypatch.delenv("SCALING_URL")
    assert ScalingClient().url == "http://127.0.0.1:8000"
