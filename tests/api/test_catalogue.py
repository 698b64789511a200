"""The typed answers of GET /v1/laws, GET /v1/hardware and POST /v1/compare, and the inverse
and inference-aware questions of POST /v1/recommendations."""

from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.scaling import CATALOGUE, list_presets
from service.schemas.catalogue import Hardware, PublishedLaw
from service.schemas.recommendations import CompareRow


def test_laws_are_the_presets_as_published(client: TestClient) -> None:
    body = client.get("/v1/laws").json()

    assert body == [preset.to_json() for preset in list_presets()]
    kaplan = next(PublishedLaw.model_validate(law) for law in body if law["name"] == "kaplan-2020")
    assert kaplan.law.law == "kaplan"
    assert set(kaplan.law.parameters) == {"N_c", "D_c", "alpha_N", "alpha_D"}


def test_hardware_is_the_catalogue(client: TestClient) -> None:
    body = client.get("/v1/hardware").json()

    assert [Hardware.model_validate(item).name for item in body] == list(CATALOGUE)
    assert set(body[0]) == {"name", "peak_bf16_flops", "memory_gb", "source"}


def test_compare_rows_name_their_source_without_the_unused_kinds(client: TestClient) -> None:
    response = client.post(
        "/v1/compare",
        json={
            "sources": [{"preset": "chinchilla-2022"}, {"fit_id": 12345}],
            "budget": {"flops": 1e21},
        },
    )

    assert response.status_code == 200, response.text
    preset, unknown = response.json()["rows"]
    assert preset["source"] == {
        "preset": "chinchilla-2022",
        "law": "chinchilla",
        "method": "parametric",
    }
    assert preset["recommendation"]["source"]["kind"] == "preset"
    assert preset["error"] is None
    assert unknown["source"] == {"fit_id": 12345, "law": "chinchilla", "method": "parametric"}
    assert unknown["recommendation"] is None
    assert unknown["error"]["code"] == "not_found"
    assert CompareRow.model_validate(unknown).source.fit_id == 12345
    assert preset["label"] == "chinchilla-2022"
    assert (preset["params_convention"], preset["flops_convention"]) == ("total", "C")


def test_inverse_questions_and_inference_budgets_through_the_api(client: TestClient) -> None:
    def ask(budget: dict[str, float], **constraints: object) -> dict[str, Any]:
        response = client.post(
            "/v1/recommendations",
            json={
                "source": {"preset": "chinchilla-2022"},
                "budget": budget,
                "constraints": constraints,
            },
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    by_size = ask({"params": 1e9})
    assert f"{by_size['flops']:.4g}" == "2.642e+20"
    assert f"{by_size['tokens']:.4g}" == "4.403e+10"
    assert ask({"tokens": 4.403e10})["params"] == pytest.approx(1e9, rel=1e-3)
    assert ask({"target_loss": by_size["loss"]})["flops"] == pytest.approx(2.642e20, rel=1e-3)
    total = ask({"flops": 1e24}, inference_tokens=1e13)
    assert total["flops"] + total["inference_flops"] == pytest.approx(1e24, rel=1e-9)
    assert total["total_flops"] == pytest.approx(1e24, rel=1e-9)
    assert total["equal_loss_optimum"]["loss"] == pytest.approx(total["loss"], rel=1e-9)
    assert any("budget_binds=total" in note for note in total["notes"])
    training = ask({"flops": 1e24}, inference_tokens=1e13, budget_binds="training")
    assert training["flops"] == pytest.approx(1e24, rel=1e-12)
    two = client.post(
        "/v1/recommendations",
        json={"source": {"preset": "epoch-2024"}, "budget": {"params": 1e9, "flops": 1e20}},
    )
    assert two.status_code == 422
    odd = client.post(
        "/v1/recommendations",
        json={
            "source": {"preset": "epoch-2024"},
            "budget": {"flops": 1e20},
            "constraints": {"budget_binds": "lifetime"},
        },
    )
    assert odd.status_code == 422
