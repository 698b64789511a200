"""JSON logs: request ids, one access line per request, and no secret in any log line."""

import json
import logging
from typing import Any

import pytest
import structlog
from fastapi.testclient import TestClient

from service.app import create_app
from service.logging import REDACTED, redact
from service.settings import Settings
from tests.conftest import ADMIN_TOKEN, make_experiment


def json_lines(text: str) -> list[dict[str, Any]]:
    lines = []
    for line in text.splitlines():
        if line.startswith("{"):
            lines.append(json.loads(line))
    return lines


def access_lines(text: str) -> list[dict[str, Any]]:
    return [line for line in json_lines(text) if line.get("logger") == "service.access"]


def test_incoming_request_id_is_echoed(client: TestClient) -> None:
    response = client.get("/v1/experiments", headers={"X-Request-ID": "deploy-42.a:b"})
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "deploy-42.a:b"


@pytest.mark.parametrize("sent", [None, "x" * 200, "has space", "<script>", "-leading-dash"])
def test_a_request_id_is_generated_unless_a_sane_one_is_sent(
    app_client: TestClient, sent: str | None
) -> None:
    headers = {} if sent is None else {"X-Request-ID": sent}
    response = app_client.get("/healthz", headers=headers)
    generated = response.headers["x-request-id"]
    assert generated != sent
    assert len(generated) == 32
    assert int(generated, 16) >= 0
    assert app_client.get("/healthz").headers["x-request-id"] != generated


def test_error_responses_carry_the_request_id_too(app_client: TestClient) -> None:
    response = app_client.get("/v1/experiments", headers={"X-Request-ID": "r-401"})
    assert response.status_code == 401
    assert response.headers["x-request-id"] == "r-401"
    assert app_client.get("/nowhere").headers["x-request-id"]


def test_access_log_is_one_json_line_per_request(
    client: TestClient, capsys: pytest.CaptureFixture[str]
) -> None:
    make_experiment(client, "alpha")
    capsys.readouterr()
    response = client.get("/v1/experiments/alpha/runs", headers={"X-Request-ID": "req-1"})
    assert response.status_code == 200
    lines = [
        line for line in access_lines(capsys.readouterr().err) if line["request_id"] == "req-1"
    ]
    assert len(lines) == 1, lines
    line = lines[0]
    assert line["event"] == "request"
    assert line["method"] == "GET"
    assert line["path"] == "/v1/experiments/alpha/runs"
    assert line["route"] == "/v1/experiments/{name}/runs"
    assert line["experiment"] == "alpha"
    assert line["status"] == 200
    assert isinstance(line["duration_ms"], float)
    assert line["duration_ms"] >= 0
    assert line["level"] == "info"
    assert line["timestamp"].endswith("Z")


def test_log_lines_inside_a_request_carry_its_context(client: TestClient) -> None:
    merge = structlog.contextvars.merge_contextvars
    with structlog.testing.capture_logs(processors=[merge]) as logs:
        client.get("/v1/experiments/nope", headers={"X-Request-ID": "req-ctx"})
    (access,) = [entry for entry in logs if entry["event"] == "request"]
    assert access["request_id"] == "req-ctx"
    assert access["route"] == "/v1/experiments/{name}"
    assert access["experiment"] == "nope"
    assert access["status"] == 404
    assert structlog.contextvars.get_contextvars().get("request_id") is None


def test_no_secret_reaches_any_log_line(
    client: TestClient, capsys: pytest.CaptureFixture[str]
) -> None:
    other = "ss_intruder01_" + "t" * 43
    capsys.readouterr()
    make_experiment(client, "secret-test")
    client.get("/v1/experiments/secret-test/runs", headers={"X-Request-ID": "s1"})
    client.get("/v1/keys")
    client.get("/v1/experiments", headers={"Authorization": f"Bearer {other}"})
    client.get(f"/v1/keys/{other}")  # a token pasted into a path
    # Code that logs carelessly is scrubbed as well, through structlog and stdlib alike.
    log = structlog.get_logger("test")
    log.warning("careless", authorization=f"Bearer {ADMIN_TOKEN}", note=f"key={other}")
    log.warning("careless nested", headers={"x-api-key": "plain-secret-value"}, api_key="abc")
    logging.getLogger("uvicorn.error").warning("stdlib %s and %s", ADMIN_TOKEN, other)
    try:
        raise RuntimeError(f"failed with {ADMIN_TOKEN}")
    except RuntimeError:
        log.exception("with traceback")
    captured = capsys.readouterr()
    output = captured.err + captured.out
    assert access_lines(output), "expected access lines on stderr"
    for secret in (ADMIN_TOKEN, other, "s" * 43, "t" * 43, "plain-secret-value"):
        assert secret not in output
    assert REDACTED in output
    assert "ss_intruder01_" in output  # the prefix names the key and stays


def test_redact_processor_masks_keys_and_token_values() -> None:
    event = {
        "event": "x",
        "Authorization": "Bearer abc",
        "password": "hunter2",
        "nested": {"refresh_token": "r", "list": ["ss_ab12_secretpart", 3]},
        "count": 3,
        "flag": None,
        "X-API-Key": "k",
        "tokens": 8e9,
        "tokens_per_param": 20.0,
        "tokenizer_hash": "abc",
    }
    out = redact(None, "info", event)
    assert out["Authorization"] == REDACTED
    assert out["password"] == REDACTED
    assert out["nested"]["refresh_token"] == REDACTED
    assert out["nested"]["list"] == [f"ss_ab12_{REDACTED}", 3]
    assert out["count"] == 3
    assert out["X-API-Key"] == REDACTED
    # training-token counts are data, not credentials
    assert (out["tokens"], out["tokens_per_param"], out["tokenizer_hash"]) == (8e9, 20.0, "abc")
    assert out["flag"] is None


def test_an_unhandled_error_keeps_the_request_id_and_context(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    app = create_app(settings)

    @app.get("/v1/experiments/{name}/boom")
    def boom(name: str) -> None:
        raise RuntimeError(f"boom with {ADMIN_TOKEN}")

    with TestClient(app, raise_server_exceptions=False) as client:
        capsys.readouterr()
        response = client.get("/v1/experiments/e1/boom", headers={"X-Request-ID": "req-500"})
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal_error"
    assert response.headers["x-request-id"] == "req-500"
    output = capsys.readouterr().err
    lines = [line for line in json_lines(output) if line.get("request_id") == "req-500"]
    events = {line["event"]: line for line in lines}
    assert events["unhandled_error"]["experiment"] == "e1"
    assert "RuntimeError" in events["unhandled_error"]["exception"]
    assert events["request"]["status"] == 500
    assert events["request"]["route"] == "/v1/experiments/{name}/boom"
    assert ADMIN_TOKEN not in output
