"""The offline `fit` and `recommend` commands, through typer's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from service.cli.main import app

DATA = Path(__file__).resolve().parents[2] / "examples" / "data"
EPOCH = DATA / "epoch_chinchilla_svg_extracted_data.csv"
runner = CliRunner()


def _json(args: list[str]) -> dict[str, Any]:
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    parsed: dict[str, Any] = json.loads(result.stdout)
    return parsed


def test_fit_json_reproduces_reference_and_reports_filtered_rows() -> None:
    out = _json(["fit", str(EPOCH), "--max-loss", "3.446995", "--json"])
    assert out["law"]["law"] == "chinchilla"
    assert set(out["law"]) >= {"E", "A", "B", "alpha", "beta"}
    assert abs(out["law"]["E"] - 1.8172) < 0.005
    assert out["input"]["rows"] == 240
    assert out["input"]["filtered"] == 5


def test_fit_without_filter_keeps_every_row() -> None:
    out = _json(["fit", str(EPOCH), "--json"])
    assert out["input"]["rows"] == 245
    assert out["input"]["filtered"] == 0


def test_fit_then_recommend_from_the_stored_fit(tmp_path: Path) -> None:
    out = _json(["fit", str(EPOCH), "--max-loss", "3.446995", "--bootstrap", "100", "--json"])
    fit_file = tmp_path / "fit.json"
    fit_file.write_text(json.dumps(out))
    alloc = _json(["recommend", "--fit", str(fit_file), "--flops", "1e23", "--json"])
    assert {"params", "tokens", "flops", "loss"} <= set(alloc)
    assert alloc["flops"] == pytest.approx(1e23)
    lo, hi = alloc["intervals"]["params"]
    assert lo < alloc["params"] < hi


def test_recommend_from_preset_by_gpu_hours() -> None:
    alloc = _json(
        [
            "recommend",
            "--preset",
            "epoch-2024",
            "--gpu-hours",
            "1e5",
            "--gpu",
            "H100-SXM",
            "--mfu",
            "0.4",
            "--usd-per-gpu-hour",
            "2",
            "--json",
        ]
    )
    assert alloc["flops"] == pytest.approx(1e5 * 989.4e12 * 0.4 * 3600)
    assert alloc["cost_usd"] == pytest.approx(2e5)
    assert alloc["shape"]["n_layer"] > 0


def test_recommend_target_loss_and_human_output() -> None:
    result = runner.invoke(
        app, ["recommend", "--preset", "chinchilla-2022", "--target-loss", "2.0"]
    )
    assert result.exit_code == 0, result.output
    assert "params" in result.output
    assert "tokens_per_param" in result.output


def test_isoflop_file_needs_an_experiment() -> None:
    path = DATA / "openathena_isoflops_extract.csv"
    result = runner.invoke(app, ["fit", str(path), "--method", "isoflop"])
    assert result.exit_code == 2
    assert "--experiment" in result.output
    out = _json(
        [
            "fit",
            str(path),
            "--method",
            "isoflop",
            "--experiment",
            "ml_scalefit__massivetext__chinchilla",
            "--json",
        ]
    )
    assert 0.4 < out["law"]["a"] < 0.65
    assert out["budgets"]


def test_errors_exit_2_with_a_message(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("params,tokens,loss\n1e8,1e9,3.0\n2e8,2e9,-1\n")
    result = runner.invoke(app, ["fit", str(bad)])
    assert result.exit_code == 2
    assert "Need at least" in result.output
    assert "must be finite and > 0" in result.output
    result = runner.invoke(app, ["recommend", "--preset", "nope", "--flops", "1e20"])
    assert result.exit_code == 2
    assert "Unknown preset" in result.output
    result = runner.invoke(app, ["recommend", "--preset", "epoch-2024"])
    assert result.exit_code == 2
    result = runner.invoke(app, ["fit", str(bad), "--law", "hoffmann"])
    assert result.exit_code == 2
    assert "'chinchilla', 'kaplan', 'data_constrained'" in result.output


def test_fit_reads_renamed_columns_with_a_mapping(tmp_path: Path) -> None:
    """Epoch's runs under headers of one's own: mapped, the fit is the same as the original's."""
    original = _json(["fit", str(EPOCH), "--max-loss", "3.446995", "--json"])
    text = EPOCH.read_text().replace("Model Size", "size_m", 1).replace("loss", "xent", 1)
    renamed = tmp_path / "renamed.csv"
    renamed.write_text(text)
    refused = runner.invoke(app, ["fit", str(renamed)])
    assert refused.exit_code == 2 and "Columns seen:" in refused.output
    mapping = ["--column", "params=size_m", "--column", "loss=xent"]
    mapped = _json(["fit", str(renamed), *mapping, "--max-loss", "3.446995", "--json"])
    assert mapped["law"] == original["law"]


def test_recommend_reads_budgets_and_constraints_as_the_api_does() -> None:
    """Dollars become FLOPs through the service's own mapping, its checks and its default MFU."""
    by_usd = _json(
        ["recommend", "--preset", "epoch-2024", "--usd", "2e5", "--usd-per-gpu-hour", "2", "--json"]
    )
    assert by_usd["mfu"] == 0.4
    assert by_usd["flops"] == pytest.approx(1e5 * 989.4e12 * 0.4 * 3600)
    no_price = runner.invoke(app, ["recommend", "--preset", "epoch-2024", "--usd", "2e5"])
    assert no_price.exit_code == 2
    assert "a usd budget needs --usd-per-gpu-hour" in no_price.output
    bad_mfu = runner.invoke(
        app, ["recommend", "--preset", "epoch-2024", "--flops", "1e22", "--mfu", "2"]
    )
    assert bad_mfu.exit_code == 2
    assert "--mfu: Input should be less than or equal to 1" in bad_mfu.output
    negative = runner.invoke(
        app, ["recommend", "--preset", "epoch-2024", "--flops", "1e22", "--max-params", "-1"]
    )
    assert negative.exit_code == 2
    assert "--max-params: Input should be greater than 0" in negative.output


def test_law_is_a_hidden_deprecated_spelling_of_preset() -> None:
    old = runner.invoke(app, ["recommend", "--law", "epoch-2024", "--flops", "1e22", "--json"])
    assert old.exit_code == 0, old.output
    assert "--law is deprecated; use --preset" in old.stderr
    new = _json(["recommend", "--preset", "epoch-2024", "--flops", "1e22", "--json"])
    assert json.loads(old.stdout) == new
    shown = runner.invoke(app, ["recommend", "--help"]).output
    assert "--preset" in shown and "--law" not in shown


def test_recommend_gives_hyperparameters_for_the_models_vocabulary_and_context() -> None:
    out = _json(
        [
            "recommend",
            "--preset",
            "epoch-2024",
            "--flops",
            "1e19",
            "--vocab-size",
            "50257",
            "--context-tokens",
            "2048",
            "--json",
        ]
    )
    shape, hyper = out["shape"], out["hyperparameters"]
    assert shape["params"] - shape["non_embedding_params"] == 50257 * shape["d_model"]
    c = (72 * shape["d_model"] + 12 * 2048) * shape["n_layer"] * shape["d_model"] * out["tokens"]
    assert hyper["learning_rate"]["flops"] == pytest.approx(c)
    assert hyper["learning_rate"]["value"] == pytest.approx(0.3118 * c**-0.125)
    assert hyper["batch_size_tokens"]["value"] == pytest.approx(0.2920 * c**0.3271)
    assert hyper["batch_size_sequences"] == pytest.approx(
        hyper["batch_size_tokens"]["value"] / 2048
    )
    human = runner.invoke(app, ["recommend", "--preset", "epoch-2024", "--flops", "1e21"])
    assert human.exit_code == 0, human.output
    assert "learning_rate" in human.stdout and "deepseek-2024" in human.stdout
    assert "above the 1e+17-2e+19" in " ".join(human.stdout.split())


def test_the_inverse_questions_and_inference_budgets() -> None:
    by_size = _json(["recommend", "--preset", "chinchilla-2022", "--params", "1e9", "--json"])
    assert f"{by_size['flops']:.4g}" == "2.642e+20"
    assert f"{by_size['tokens']:.4g}" == "4.403e+10"
    by_data = _json(["recommend", "--preset", "chinchilla-2022", "--tokens", "4.403e10", "--json"])
    assert by_data["params"] == pytest.approx(1e9, rel=1e-3)
    served = ["recommend", "--preset", "chinchilla-2022", "--flops", "1e24"]
    served += ["--inference-tokens", "1e13", "--json"]
    total = _json(served)
    assert total["flops"] < 1e24
    assert total["total_flops"] == pytest.approx(1e24, rel=1e-9)
    assert total["equal_loss_optimum"]["total_flops"] > 1e24
    training = _json([*served, "--budget-binds", "training"])
    assert training["flops"] == pytest.approx(1e24, rel=1e-12)
    human = runner.invoke(app, served[:-1])
    assert human.exit_code == 0, human.output
    assert "budget_binds=total" in human.output
    assert "compute-optimal, equal loss" in human.output
    twice = runner.invoke(
        app, ["recommend", "--preset", "epoch-2024", "--params", "1", "--flops", "1"]
    )
    assert twice.exit_code == 2
    assert "exactly one of" in twice.output


def test_compare_presets_offline() -> None:
    args = ["compare", "--preset", "chinchilla-2022", "--preset", "kaplan-2020", "--flops", "1e24"]
    out = _json([*args, "--json"])
    assert [row["label"] for row in out["rows"]] == ["chinchilla-2022", "kaplan-2020"]
    assert out["rows"][1]["flops_convention"] == "C_min"
    params = [row["allocation"]["params"] for row in out["rows"]]
    ratio = out["disagreement"]["spreads"]["params"]["ratio"]
    assert ratio == pytest.approx(max(params) / min(params))
    human = runner.invoke(app, args)
    assert human.exit_code == 0, human.output
    assert f"params {ratio:.3g}x" in human.output
    alone = runner.invoke(app, ["compare", "--preset", "epoch-2024", "--flops", "1e24"])
    assert alone.exit_code == 2
