"""`scaling-service remote webhooks ...` and the Python client against a live server, with a
worker's deliverer sending to the real receiver."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from service.cli.main import app
from service.client import ScalingClient
from service.db import create_db_engine, make_session_factory
from service.settings import Settings
from service.testing import live_server
from service.webhooks.delivery import Deliverer
from tests.conftest import ADMIN_TOKEN
from tests.webhooks.conftest import Receiver, webhook_settings


@pytest.fixture
def served(tmp_path: Path, sqlite_template: Path) -> Iterator[tuple[str, Settings]]:
    path = tmp_path / "scaling.db"
    shutil.copy(sqlite_template, path)
    settings = webhook_settings(f"sqlite:///{path}", log_level="warning")
    with live_server(settings) as url:
        yield url, settings


def invoke(*args: str, code: int = 0) -> str:
    result = CliRunner().invoke(app, ["remote", *args], env={"COLUMNS": "200"})
    assert result.exit_code == code, result.output
    return result.output


@pytest.mark.slow(seconds=7)
def test_add_list_test_deliveries_delete_from_the_cli_and_the_client(
    served: tuple[str, Settings], receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, settings = served
    monkeypatch.setenv("SCALING_URL", url)
    monkeypatch.setenv("SCALING_API_KEY", ADMIN_TOKEN)
    target = receiver.url + receiver.path

    refused = invoke("webhooks", "add", "https://internal.corp/x", "--event", "fit.failed", code=1)
    assert "allow-list" in refused
    added = json.loads(
        invoke(
            "webhooks", "add", target, "--event", "fit.succeeded", "--json", "--watch-flops", "1e21"
        )
    )
    receiver.secrets[receiver.path] = added["secret"]
    assert added["watch_flops"] == [1e21]
    listed = invoke("webhooks", "list")
    assert target in listed and "(all)" in listed and added["secret"] not in listed
    assert "ping queued" in invoke("webhooks", "test", str(added["id"]))

    engine = create_db_engine(settings.database_url)
    worker = Deliverer(make_session_factory(engine), settings, owner="cli-test")
    assert worker.run_once() == 1
    worker.client.close()
    engine.dispose()
    log = invoke("webhooks", "deliveries", str(added["id"]))
    assert "ping" in log and "succeeded" in log and "200" in log
    (seen,) = receiver.at(receiver.path)
    assert seen.signature_ok and seen.event_type == "ping"

    with ScalingClient() as client:
        made = client.create_webhook(
            {"url": target, "events": ["job.finished"], "secret": "a-secret-of-my-own"}
        )
        assert made.secret == "a-secret-of-my-own"
        assert [w.id for w in client.list_webhooks()] == [added["id"], made.id]
        assert client.get_webhook(made.id).events == ["job.finished"]
        ping = client.test_webhook(made.id)
        assert [d.id for d in client.iter_webhook_deliveries(made.id, page_size=1)] == [ping.id]
        assert client.list_webhook_deliveries(made.id).items[0].status == "pending"
        client.delete_webhook(made.id)
    assert "deleted" in invoke("webhooks", "delete", str(added["id"]))
    assert "0 webhooks" in invoke("webhooks", "list")
