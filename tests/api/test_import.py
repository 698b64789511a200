"""Bulk import of the published data sets (examples/data) and of bad files."""

import csv
import io
import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.conftest import EXAMPLES, make_experiment

DATA = EXAMPLES
FILES = {
    "epoch_chinchilla_svg_extracted_data.csv": 245,
    "kyo_chinchilla_llm_df.csv": 234,
    "openathena_isoflops_extract.csv": 947,
    "openathena_isoflops_transform.csv": 947,
}


def import_file(client: TestClient, text: str, content_type: str = "text/csv", name: str = "exp"):  # type: ignore[no-untyped-def]
    return client.post(
        f"/v1/experiments/{name}/runs:import", content=text, headers={"content-type": content_type}
    )


@pytest.mark.parametrize("filename", sorted(FILES))
def test_imports_each_shared_data_file(client: TestClient, filename: str) -> None:
    path = DATA / filename
    make_experiment(client)
    response = import_file(client, path.read_text())
    assert response.status_code == 201, response.text[:500]
    body = response.json()
    assert body["rows"] == body["created"] == FILES[filename]
    rows = list(csv.DictReader(io.StringIO(path.read_text())))
    stored = client.get("/v1/experiments/exp/runs", params={"limit": 1000}).json()["items"]
    assert len(stored) == len(rows)
    for row, run in zip(rows, stored, strict=True):
        assert run["loss"] == float(row["loss"])
        params = row.get("params") or row.get("N") or row["Model Size"]
        assert run["params"] == float(params)
        if "Training FLOP" in row:
            assert run["tokens"] == pytest.approx(float(row["Training FLOP"]) / (6 * float(params)))
            assert run["metadata"]["tokens_derived"] == "flops / (6 * params)"


def test_second_import_of_keyed_file_stores_nothing_new(client: TestClient) -> None:
    make_experiment(client)
    text = "run_key,N,D,loss\na,1e8,2e9,3.1\nb,2e8,4e9,2.9\n"
    assert import_file(client, text).json()["created"] == 2
    again = import_file(client, text)
    assert again.status_code == 200
    assert again.json()["existing"] == 2


def test_jsonl_import(client: TestClient) -> None:
    make_experiment(client)
    lines = [{"params": 1e8, "tokens": 2e9, "loss": 3.0, "run_key": "j1", "metadata": {"a": 1}}]
    response = import_file(client, "\n".join(json.dumps(x) for x in lines), "application/x-ndjson")
    assert response.status_code == 201
    assert response.json()["format"] == "jsonl"
    stored = client.get("/v1/experiments/exp/runs").json()["items"][0]
    assert stored["metadata"] == {"a": 1}


def test_bad_rows_are_reported_and_nothing_is_stored(client: TestClient) -> None:
    make_experiment(client)
    text = "N,D,loss\n1e8,2e9,3.0\n-1,2e9,3.0\n1e8,abc,3.0\n1e8,2e9\n1e8,2e9,0\n"
    response = import_file(client, text)
    assert response.status_code == 422
    error = response.json()["error"]
    assert "4 of 5 rows" in error["message"]
    reported = {(e["row"], e["field"]) for e in error["details"]["errors"]}
    assert reported == {(1, "params"), (2, "tokens"), (3, None), (4, "loss")}
    assert client.get("/v1/experiments/exp/runs").json()["items"] == []


def test_truncated_and_wrong_files(client: TestClient) -> None:
    make_experiment(client)
    full = (DATA / "kyo_chinchilla_llm_df.csv").read_text()
    truncated = full[: len(full) // 2].rsplit(",", 1)[0]
    assert import_file(client, truncated).status_code == 422
    assert import_file(client, "N,D,loss\n").status_code == 422
    assert import_file(client, "{not json", "application/x-ndjson").status_code == 422
    assert import_file(client, "N,D,loss\n1,1,1\n", "application/pdf").status_code == 422
    assert client.get("/v1/experiments/exp").json()["run_count"] == 0


def test_latin1_bytes_are_422(client: TestClient, tmp_path: Path) -> None:
    make_experiment(client)
    response = client.post(
        "/v1/experiments/exp/runs:import",
        content="N,D,loss,note\n1,1,1,caf\xe9\n".encode("latin-1"),
        headers={"content-type": "text/csv"},
    )
    assert response.status_code == 422
    assert "UTF-8" in response.json()["error"]["message"]
