"""The operator names MLflow servers in the environment; credentials never sit in a URL."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from service.settings import Settings


def test_servers_come_from_the_environment_as_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "SCALING_MLFLOW_SERVERS",
        '{"main": {"url": "https://mlflow.internal:5000", "token": "s3cret"}}',
    )
    server = Settings().mlflow_servers["main"]
    assert server.url == "https://mlflow.internal:5000"
    assert server.token is not None
    assert server.token.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(server)


@pytest.mark.parametrize(
    "url", ["http://user:pw@mlflow:5000", "ftp://mlflow", "mlflow:5000", "http://"]
)
def test_urls_with_credentials_or_without_a_host_are_refused(url: str) -> None:
    with pytest.raises(ValidationError, match="url"):
        Settings(mlflow_servers={"main": {"url": url}})
