"""The typed answers of GET /v1/laws, GET /v1/hardware and POST /v1/compare."""

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
    preset, unknown = response.json()
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
