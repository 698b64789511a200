"""Experiments over HTTP, on each backend."""

from fastapi.testclient import TestClient

from tests.conftest import make_experiment


def test_create_get_patch(client: TestClient) -> None:
    created = make_experiment(
        client, "chin", description="d", param_convention="non_embedding", metadata={"k": 1}
    )
    assert created["param_convention"] == "non_embedding"
    assert created["flops_formula"] == "6ND"
    assert created["run_count"] == 0
    assert str(created["created_at"]).endswith("Z")

    patched = client.patch("/v1/experiments/chin", json={"description": "new"}).json()
    assert patched["description"] == "new"
    assert patched["metadata"] == {"k": 1}
    assert client.get("/v1/experiments/chin").json()["description"] == "new"


def test_duplicate_name_is_409(client: TestClient) -> None:
    make_experiment(client, "dup")
    response = client.post("/v1/experiments", json={"name": "dup"})
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "conflict"


def test_invalid_bodies_are_422_naming_the_field(client: TestClient) -> None:
    for body, field in (
        ({"name": "Bad Name"}, "name"),
        ({"name": "ok", "param_convention": "both"}, "param_convention"),
        ({"name": "ok", "flops_formula": "8ND"}, "flops_formula"),
        ({"name": "ok", "surprise": 1}, "surprise"),
    ):
        response = client.post("/v1/experiments", json=body)
        assert response.status_code == 422, body
        error = response.json()["error"]
        assert error["code"] == "validation_error"
        assert error["details"][0]["field"] == field
    assert client.get("/v1/experiments").json()["items"] == []


def test_patch_cannot_change_conventions(client: TestClient) -> None:
    make_experiment(client, "fixed")
    response = client.patch("/v1/experiments/fixed", json={"param_convention": "total"})
    assert response.status_code == 422


def test_list_paginates(client: TestClient) -> None:
    for i in range(5):
        make_experiment(client, f"e{i}")
    names, token = [], None
    while True:
        params: dict[str, str | int] = {"limit": 2}
        if token:
            params["page_token"] = token
        page = client.get("/v1/experiments", params=params).json()
        names += [item["name"] for item in page["items"]]
        token = page["next_page_token"]
        if token is None:
            break
    assert names == [f"e{i}" for i in range(5)]
    assert client.get("/v1/experiments", params={"page_token": "garbage"}).status_code == 422


def test_delete_refuses_with_runs_unless_forced(client: TestClient) -> None:
    make_experiment(client, "gone")
    client.post("/v1/experiments/gone/runs", json={"runs": [{"params": 1, "tokens": 1, "loss": 1}]})
    refused = client.delete("/v1/experiments/gone")
    assert refused.status_code == 409
    assert refused.json()["error"]["details"] == {"runs": 1}
    assert client.get("/v1/experiments/gone").json()["run_count"] == 1
    assert client.delete("/v1/experiments/gone", params={"force": True}).status_code == 204
    assert client.get("/v1/experiments/gone").status_code == 404
    assert client.get("/v1/runs/1").status_code == 404


def test_missing_experiment_is_404_in_error_shape(client: TestClient) -> None:
    response = client.get("/v1/experiments/nope")
    assert response.status_code == 404
    assert response.json() == {
        "error": {
            "code": "not_found",
            "message": "experiment 'nope' not found",
            "details": {"experiment": "nope"},
        }
    }
