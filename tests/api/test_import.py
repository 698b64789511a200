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

    # Keyed by content, runs are stored in key order: compare them with the rows as multisets.
    def as_read(row: dict[str, str]) -> tuple[float, float, float]:
        params = float(row.get("params") or row.get("N") or row["Model Size"])
        if "Training FLOP" in row:
            tokens = float(row["Training FLOP"]) / (6 * params)
        else:
            tokens = float(row.get("tokens") or row["D"])
        return params, tokens, float(row["loss"])

    expected = sorted(as_read(row) for row in rows)
    got = sorted((run["params"], run["tokens"], run["loss"]) for run in stored)
    for (n, d, loss), (n2, d2, loss2) in zip(expected, got, strict=True):
        assert (n, loss) == (n2, loss2)
        assert d == pytest.approx(d2, rel=1e-12)
    if "Training FLOP" in rows[0]:
        assert {run["metadata"]["tokens_derived"] for run in stored} == {"flops / (6 * params)"}


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


@pytest.mark.parametrize(
    "text",
    [
        "model_size,num_tokens,val_loss\n1e8,2e9,3.1\n2e8,4e9,2.9\n",
        "N,D,Loss\n1e8,2e9,3.1\n2e8,4e9,2.9\n",
        "params;tokens;loss\n1e8;2e9;3.1\n2e8;4e9;2.9\n",
        "Params,Tokens,Loss\n1e8,2e9,3.1\n2e8,4e9,2.9\n",
    ],
)
def test_the_header_variants_of_real_files_are_read(client: TestClient, text: str) -> None:
    make_experiment(client)
    response = import_file(client, text)
    assert response.status_code == 201, response.text
    stored = client.get("/v1/experiments/exp/runs").json()["items"]
    assert sorted((r["params"], r["tokens"], r["loss"]) for r in stored) == [
        (1e8, 2e9, 3.1),
        (2e8, 4e9, 2.9),
    ]
    assert all(r["metadata"] == {} for r in stored)  # nothing landed in metadata by mistake


def test_an_unreadable_header_names_the_columns_seen_and_accepted(client: TestClient) -> None:
    make_experiment(client)
    response = import_file(client, "size_m,toks,xent\n1e8,2e9,3.1\n")
    assert response.status_code == 422
    message = response.json()["error"]["message"]
    assert "missing column(s): params, loss, tokens or flops" in message
    assert "Columns seen: size_m, toks, xent" in message
    assert "model size" in message and "val loss" in message  # the names accepted
    assert message.count("\n") == 0 and "Field required" not in message
    mapped = client.post(
        "/v1/experiments/exp/runs:import",
        params=[("column", "params=size_m"), ("column", "tokens=toks"), ("column", "loss=xent")],
        content="size_m,toks,xent\n1e8,2e9,3.1\n",
        headers={"content-type": "text/csv"},
    )
    assert mapped.status_code == 201, mapped.text
    absent = client.post(
        "/v1/experiments/exp/runs:import",
        params={"column": "params=nope"},
        content="size_m,toks,xent\n1e8,2e9,3.1\n",
        headers={"content-type": "text/csv"},
    )
    assert absent.status_code == 422 and "'nope' not in the header" in absent.text


def test_a_repeated_import_stores_nothing_twice(client: TestClient) -> None:
    make_experiment(client)
    text = (DATA / "kyo_chinchilla_llm_df.csv").read_text()
    first = import_file(client, text)
    assert first.status_code == 201 and first.json()["created"] == 234
    again = import_file(client, text)
    assert again.status_code == 200, again.text
    assert (again.json()["created"], again.json()["existing"]) == (0, 234)
    assert client.get("/v1/experiments/exp").json()["run_count"] == 234
    keys = {r["run_key"] for r in client.get("/v1/experiments/exp/runs").json()["items"]}
    assert all(key.startswith("content-") for key in keys)
    doubled = client.post(
        "/v1/experiments/exp/runs:import",
        params={"derive_keys": "false"},
        content=text,
        headers={"content-type": "text/csv"},
    )
    assert doubled.status_code == 201 and doubled.json()["created"] == 234


def test_identical_rows_in_one_file_are_both_kept(client: TestClient) -> None:
    make_experiment(client)
    text = "N,D,loss\n1e8,2e9,3.1\n1e8,2e9,3.1\n"
    assert import_file(client, text).json()["created"] == 2
    assert import_file(client, text).json()["existing"] == 2


def test_header_mistakes_are_refused(client: TestClient) -> None:
    make_experiment(client)
    twice = import_file(client, "N,D,loss,loss\n1e8,2e9,3.1,2.0\n")
    assert twice.status_code == 422 and "'loss' twice" in twice.text
    both = import_file(client, "params,N,D,loss\n1e8,1e8,2e9,3.1\n")
    assert both.status_code == 422 and "both name params" in both.text
    unterminated = import_file(client, 'N,D,loss,note\n1e8,2e9,3.1,"open\n')
    assert unterminated.status_code == 422
    assert client.get("/v1/experiments/exp").json()["run_count"] == 0


def test_offline_and_server_read_a_file_alike(client: TestClient) -> None:
    """One reader: U_D is unique_tokens and `Params,Tokens,Loss` parses, on both sides."""
    from service.io.runs_csv import parse_runs_csv

    text = "Params,Tokens,Loss,U_D\n1e8,2e9,3.1,1e9\n2e8,4e9,2.9,1e9\n"
    offline = parse_runs_csv(text).to_runs()
    make_experiment(client)
    assert import_file(client, text).status_code == 201
    stored = client.get("/v1/experiments/exp/runs").json()["items"]
    assert offline.unique_tokens is not None
    assert sorted(r["unique_tokens"] for r in stored) == sorted(offline.unique_tokens.tolist())
    assert all("U_D" not in r["metadata"] for r in stored)


def test_an_octet_stream_upload_is_read_as_csv_or_json_lines(client: TestClient) -> None:
    """Generated clients upload a file as application/octet-stream: the first byte tells."""
    make_experiment(client)
    octet = {"content-type": "application/octet-stream"}
    as_csv = client.post(
        "/v1/experiments/exp/runs:import",
        content="\ufeffparams,tokens,loss\n1e8,2e9,3.1\n".encode(),
        headers=octet,
    )
    assert as_csv.status_code == 201, as_csv.text
    assert as_csv.json()["format"] == "csv"
    as_jsonl = client.post(
        "/v1/experiments/exp/runs:import",
        content=b'\n  {"params": 2e8, "tokens": 4e9, "loss": 2.9}\n',
        headers=octet,
    )
    assert as_jsonl.status_code == 201, as_jsonl.text
    assert as_jsonl.json()["format"] == "jsonl"
    assert len(client.get("/v1/experiments/exp/runs").json()["items"]) == 2
