"""Recommendations carry a learning rate and batch size: the experiment's own sweeps first."""

from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from service.fits import hyperparams
from tests.conftest import grid_runs, make_experiment


def eta(flops: float) -> float:
    return 0.3118 * flops**-0.125


def sweep_runs() -> list[dict[str, object]]:
    """Three sizes per budget (a Chinchilla surface), each run at five learning rates; loss rises
    quadratically in log(lr / eta_opt(C))."""
    runs: list[dict[str, object]] = []
    for flops in (1e17, 1e18, 1e19, 1e20):
        for scale in (0.3, 1.0, 3.0):
            n = scale * 6e7 * (flops / 1e18) ** 0.5
            d = flops / (6 * n)
            for lr in eta(flops) * np.geomspace(0.25, 4, 5):
                loss = 1.7 + 400 / n**0.34 + 410 / d**0.28 + 0.05 * np.log(lr / eta(flops)) ** 2
                runs.append(
                    {
                        "run_key": f"c{flops:.0e}-s{scale}-lr{lr:.3e}",
                        "params": n,
                        "tokens": d,
                        "loss": float(loss),
                        "hyperparameters": {"peak_lr": float(lr), "batch_tokens": 262144},
                        "metadata": {"budget": flops},
                    }
                )
    return runs


def test_recommendation_uses_the_experiments_sweeps_vocabulary_and_context(
    client: TestClient,
) -> None:
    make_experiment(client, "swept", metadata={"vocab_size": 256, "context_tokens": 1024})
    posted = client.post("/v1/experiments/swept/runs", json={"runs": sweep_runs()})
    assert posted.status_code in (200, 201), posted.text
    fitted = client.post("/v1/experiments/swept/fits", json={"method": "isoflop"})
    assert fitted.status_code == 201, fitted.text
    rec = client.get(
        "/v1/experiments/swept/recommendation", params={"flops": 1e19, "method": "isoflop"}
    ).json()
    shape, hyper = rec["shape"], rec["hyperparameters"]
    assert shape["params"] - shape["non_embedding_params"] == 256 * shape["d_model"]
    lr = hyper["learning_rate"]
    assert lr["source"] == "fitted"
    assert abs(np.log(lr["value"] / eta(1e19))) < 0.05
    assert lr["interval"][0] < lr["value"] < lr["interval"][1]
    assert lr["valid_flops"] == pytest.approx([1e17, 1e20])
    low, high = lr["exponent_interval_95"]
    assert low < -0.125 < high
    # One batch size everywhere: no batch sweep, so the preset answers it.
    assert hyper["batch_size_tokens"]["source"] == "preset deepseek-2024"
    assert hyper["context_tokens"] == 1024
    assert hyper["batch_size_sequences"] == hyper["batch_size_tokens"]["value"] / 1024
    assert "vocab_size 256 from the experiment's metadata" in hyper["notes"]
    assert any(note.startswith("no batch_size_tokens sweep") for note in hyper["notes"])


def test_a_preset_answers_with_deepseeks_rules(client: TestClient) -> None:
    body = {"source": {"preset": "epoch-2024"}, "budget": {"flops": 1e21}}
    rec = client.post("/v1/recommendations", json=body).json()
    hyper = rec["hyperparameters"]
    assert hyper["learning_rate"]["source"] == "preset deepseek-2024"
    assert hyper["learning_rate"]["valid_flops"] == [1e17, 2e19]
    assert hyper["learning_rate"]["interval"] is None
    # DeepSeek's C (M D, no attention term without a context) at the recommended shape.
    s = rec["shape"]
    c = 72 * s["n_layer"] * s["d_model"] ** 2 * rec["tokens"]
    assert hyper["learning_rate"]["flops"] == c
    assert hyper["learning_rate"]["value"] == 0.3118 * c**-0.125
    assert len(hyper["warnings"]) == 2
    assert s["params"] - s["non_embedding_params"] == 32000 * s["d_model"]


def test_the_runs_are_read_once_per_data_version_and_answers_follow_them(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads: list[int] = []
    summarise = hyperparams._summarise_runs

    def counted(session: Session, experiment_id: int) -> Any:
        reads.append(experiment_id)
        return summarise(session, experiment_id)

    monkeypatch.setattr(hyperparams, "_summarise_runs", counted)
    make_experiment(client, "grid")
    assert client.post("/v1/experiments/grid/runs", json={"runs": grid_runs()}).is_success
    assert client.post("/v1/experiments/grid/fits", json={}).status_code == 201
    body = {"source": {"experiment": "grid"}, "budget": {"flops": 1e21}}

    def notes() -> list[str]:
        answer = client.post("/v1/recommendations", json=body)
        assert answer.status_code == 200, answer.text
        found: list[str] = answer.json()["hyperparameters"]["notes"]
        return found

    assert any(note.startswith("vocab_size unknown") for note in notes())
    read = len(reads)
    for _ in range(3):  # POST answers are never cached: the runs' summary is
        notes()
    assert len(reads) == read
    extra = {"run_key": "v", "params": 2e8, "tokens": 4e9, "loss": 3.0}
    posted = client.post(
        "/v1/experiments/grid/runs",
        json={"runs": [{**extra, "hyperparameters": {"vocab_size": 512}}]},
    )
    assert posted.is_success, posted.text
    assert "vocab_size 512 from the runs' hyperparameters" in notes()
    assert len(reads) == read + 1
    runs = client.get("/v1/experiments/grid/runs", params={"limit": 100}).json()["items"]
    run_id = next(run["id"] for run in runs if run["run_key"] == "v")
    excluded = client.patch(f"/v1/runs/{run_id}", json={"excluded": True, "reason": "test"})
    assert excluded.is_success, excluded.text
    assert any(note.startswith("vocab_size unknown") for note in notes())
