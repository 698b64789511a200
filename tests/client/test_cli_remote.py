"""`scaling-service remote ...` against a live server: import, fit, recommend; bad files."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from service.cli.main import app
from tests.client.conftest import EPOCH_CSV
from tests.conftest import ADMIN_TOKEN

KYO_CSV = EPOCH_CSV.parent / "kyo_chinchilla_llm_df.csv"


@pytest.fixture
def remote(sqlite_server: str, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("SCALING_URL", sqlite_server)
    monkeypatch.setenv("SCALING_API_KEY", ADMIN_TOKEN)
    return CliRunner()


def invoke(runner: CliRunner, *args: str, code: int = 0) -> str:
    result = runner.invoke(app, ["remote", *args])
    assert result.exit_code == code, result.output
    return result.output


def test_import_fit_recommend(remote: CliRunner) -> None:
    invoke(remote, "experiments", "create", "chinchilla", "--description", "Fig. 4")
    out = invoke(remote, "runs", "import", str(KYO_CSV), "--experiment", "chinchilla")
    assert "234 rows, 234 runs created" in out
    listed = json.loads(invoke(remote, "experiments", "list", "--json"))
    assert listed[0]["run_count"] == 234
    assert "chinchilla" in invoke(remote, "experiments", "list")
    shown = json.loads(invoke(remote, "experiments", "show", "chinchilla", "--json"))
    assert shown["description"] == "Fig. 4"

    fit = json.loads(invoke(remote, "fit", "chinchilla", "--bootstrap", "20", "--json"))
    assert fit["status"] == "succeeded"
    assert fit["bootstrap_samples"] == 20
    table = invoke(remote, "fits", "show", str(fit["id"]))
    assert "alpha" in table
    assert f"/v1/fits/{fit['id']}/plots/" in table
    assert str(fit["id"]) in invoke(remote, "fits", "list", "chinchilla")

    rec = json.loads(invoke(remote, "recommend", "chinchilla", "--flops", "5.88e23", "--json"))
    assert rec["params"] * rec["tokens"] * 6 == pytest.approx(5.88e23, rel=1e-6)
    assert rec["source"]["fit_id"] == fit["id"]
    assert rec["tokens_per_param"] == pytest.approx(rec["tokens"] / rec["params"])
    human = invoke(remote, "recommend", "chinchilla", "--flops", "5.88e23")
    assert "tokens_per_param" in human
    # The kyo runs report no learning rates: DeepSeek's rules answer, at the shape's M D.
    assert rec["hyperparameters"]["learning_rate"]["source"] == "preset deepseek-2024"
    assert "learning_rate" in human and "eta_opt = 0.3118 C^-0.125" in human
    by_gpu = json.loads(
        invoke(
            remote,
            "recommend",
            "--preset",
            "chinchilla-2022",
            "--gpu-hours",
            "1e5",
            "--gpu",
            "H100-SXM",
            "--mfu",
            "0.4",
            "--json",
        )
    )
    assert by_gpu["gpu_hours"] == pytest.approx(1e5)

    runs = json.loads(invoke(remote, "runs", "list", "chinchilla", "--limit", "3", "--json"))
    assert len(runs) == 3
    invoke(remote, "runs", "exclude", str(runs[0]["id"]), "--reason", "diverged")
    excluded = json.loads(invoke(remote, "runs", "list", "chinchilla", "--excluded", "--json"))
    assert [r["id"] for r in excluded] == [runs[0]["id"]]
    invoke(remote, "runs", "include", str(runs[0]["id"]))
    assert "chinchilla-2022" in invoke(remote, "laws")
    assert "H100-SXM" in invoke(remote, "hardware")
    refused = invoke(remote, "experiments", "delete", "chinchilla", code=1)
    assert "--force deletes them too" in refused and "force=true" not in refused
    invoke(remote, "experiments", "delete", "chinchilla", "--force")


def test_bad_file_exits_non_zero_with_row_errors(remote: CliRunner, tmp_path: Path) -> None:
    invoke(remote, "experiments", "create", "exp")
    bad = tmp_path / "runs.csv"
    bad.write_text("params,tokens,loss\n1e8,2e9,3.0\n1e8,lots,3.0\n2e8,2e9,-1\n")
    out = invoke(remote, "runs", "import", str(bad), "--experiment", "exp", code=1)
    assert "2 of 3 rows are invalid" in out
    assert "row errors" in out
    assert "lots" in out or "tokens" in out
    assert json.loads(invoke(remote, "experiments", "show", "exp", "--json"))["run_count"] == 0


def test_errors_and_usage(remote: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    out = invoke(remote, "experiments", "show", "absent", code=1)
    assert "404 not_found" in out
    out = invoke(remote, "recommend", "--preset", "chinchilla-2022", code=2)
    assert "exactly one of --flops" in out
    invoke(remote, "fit", "absent", "--law", "nonsense", code=2)
    monkeypatch.setenv("SCALING_API_KEY", "ss_wrongwrong01_" + "x" * 43)
    assert "401 unauthenticated" in invoke(remote, "experiments", "list", code=1)
    out = invoke(remote, "--url", "http://127.0.0.1:9", "--retries", "0", "laws", code=3)
    assert "cannot reach" in out


def test_keys_through_the_api(remote: CliRunner) -> None:
    token = invoke(remote, "keys", "create", "--name", "ci", "--scope", "read").strip()
    prefix = token.splitlines()[-1].split("_")[1]
    assert prefix in invoke(remote, "keys", "list")
    invoke(remote, "keys", "revoke", prefix)
    keys = json.loads(invoke(remote, "keys", "list", "--json"))
    assert next(k for k in keys if k["prefix"] == prefix)["revoked_at"]


def test_fit_in_the_background_is_followed(remote: CliRunner) -> None:
    invoke(remote, "experiments", "create", "kyo")
    invoke(remote, "runs", "import", str(KYO_CSV), "-e", "kyo", "--json")
    queued = json.loads(invoke(remote, "fit", "kyo", "--bootstrap", "201", "--no-wait", "--json"))
    assert queued["status"] in ("queued", "running", "succeeded")
    done = json.loads(invoke(remote, "fit", "kyo", "--bootstrap", "202", "--json"))
    assert done["status"] == "succeeded"
    assert done["bootstrap_samples"] == 202
    shown = json.loads(invoke(remote, "fits", "show", str(queued["id"]), "--json"))
    assert shown["id"] == queued["id"]


def test_user_text_is_never_read_as_markup(remote: CliRunner, sqlite_server: str) -> None:
    """Descriptions and run keys are shown as written; before, `[/oops]` crashed the listing
    (MarkupError) for every user of the server and `[link=...]` became a link."""
    import httpx

    hostile = "[/oops] [link=http://example.invalid]click[/link] [bold]x"
    invoke(remote, "experiments", "create", "marked", "--description", hostile)
    body = {"runs": [{"run_key": "[/x]", "params": 1e8, "tokens": 2e9, "loss": 3.0}]}
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    stored = httpx.post(f"{sqlite_server}/v1/experiments/marked/runs", json=body, headers=headers)
    assert stored.status_code == 201, stored.text
    listed = invoke(remote, "experiments", "list")
    assert "[/oops]" in listed and "[link=http://example.invalid]" in listed
    assert "[/x]" in invoke(remote, "runs", "list", "marked")
    assert "[/oops]" in invoke(remote, "experiments", "show", "marked")
    missing = invoke(remote, "experiments", "show", "[/nope]", code=1)
    assert "404" in missing


def test_import_maps_columns_and_stores_a_file_once(remote: CliRunner, tmp_path: Path) -> None:
    invoke(remote, "experiments", "create", "mine")
    mine = tmp_path / "mine.csv"
    mine.write_text("size_m;toks;xent\n1e8;2e9;3.1\n2e8;4e9;2.9\n")
    refused = invoke(remote, "runs", "import", str(mine), "-e", "mine", code=1)
    assert "Columns seen: size_m, toks, xent" in refused
    args = ["--column", "params=size_m", "--column", "tokens=toks", "--column", "loss=xent"]
    first = invoke(remote, "runs", "import", str(mine), "-e", "mine", *args)
    assert "2 runs created" in first
    again = invoke(remote, "runs", "import", str(mine), "-e", "mine", *args)
    assert "0 runs created, 2 already stored" in again
    assert "NAME=COLUMN" in invoke(
        remote, "runs", "import", str(mine), "-e", "mine", "--column", "params", code=2
    )
    assert "model size" in invoke(remote, "runs", "import", "--help")


def test_laws_show_each_presets_law_and_parameters(remote: CliRunner) -> None:
    table = invoke(remote, "laws")

    assert "kaplan:" in table
    assert "alpha_N=" in table
    assert json.loads(invoke(remote, "laws", "--json"))[0]["law"]["law"] == "chinchilla"


def test_inverse_questions_inference_budgets_and_compare(remote: CliRunner) -> None:
    rec = json.loads(
        invoke(remote, "recommend", "--preset", "chinchilla-2022", "--params", "1e9", "--json")
    )
    assert f"{rec['flops']:.4g}" == "2.642e+20"
    assert f"{rec['tokens']:.4g}" == "4.403e+10"
    rec = json.loads(
        invoke(remote, "recommend", "--preset", "chinchilla-2022", "--tokens", "4.403e10", "--json")
    )
    assert rec["params"] == pytest.approx(1e9, rel=1e-3)
    served = ["recommend", "--preset", "chinchilla-2022", "--flops", "1e24"]
    served += ["--inference-tokens", "1e13"]
    rec = json.loads(invoke(remote, *served, "--budget-binds", "training", "--json"))
    assert rec["flops"] == pytest.approx(1e24, rel=1e-12)
    assert rec["total_flops"] == pytest.approx(1e24 + rec["inference_flops"])
    assert rec["equal_loss_optimum"]["total_flops"] > rec["total_flops"]
    human = invoke(remote, *served)
    assert "budget_binds=total" in human
    compare = ["compare", "--preset", "chinchilla-2022", "--preset", "epoch-2024"]
    compared = json.loads(invoke(remote, *compare, "--params", "1e9", "--json"))
    flops = [row["recommendation"]["flops"] for row in compared["rows"]]
    assert compared["disagreement"]["spreads"]["flops"]["ratio"] == pytest.approx(
        max(flops) / min(flops)
    )
    assert "answers disagree by" in invoke(remote, *compare, "--flops", "1e24")
