"""The few calls of MLflow's REST API (2.0) that a sync needs, over httpx.

The server's address and credentials are the operator's settings (SCALING_MLFLOW_SERVERS);
nothing here is logged, and errors name the server, never its credentials.
"""

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, SecretStr, field_validator

from service.errors import SourceUnavailableError

PAGE_SIZE = 1000


class MlflowServer(BaseModel):
    """One tracking server: its base URL and, when it needs them, a token or a user."""

    url: str
    token: SecretStr | None = None
    username: str | None = None
    password: SecretStr | None = None

    @field_validator("url")
    @classmethod
    def _plain_http_url(cls, url: str) -> str:
        # Request URLs get logged (httpx logs each request): credentials go in token or
        # username/password, where they are sent in headers and never printed.
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"an MLflow server url is http(s)://host[:port][/path], not {url!r}")
        if parts.username or parts.password:
            raise ValueError("put MLflow credentials in token or username/password, not the url")
        return url


@dataclass(frozen=True)
class MetricPoint:
    value: float
    step: int


@dataclass(frozen=True)
class MlflowRun:
    """The parts of an MLflow run a mapping reads."""

    run_id: str
    experiment_id: str
    run_name: str
    end_time_ms: int | None
    params: dict[str, str]
    metrics: dict[str, MetricPoint]
    tags: dict[str, str]

    @classmethod
    def from_json(cls, run: dict[str, Any]) -> "MlflowRun":
        info, data = run.get("info", {}), run.get("data", {})
        end = info.get("end_time")
        return cls(
            run_id=str(info["run_id"]),
            experiment_id=str(info.get("experiment_id", "")),
            run_name=str(info.get("run_name", "")),
            end_time_ms=None if end is None else int(end),
            params={p["key"]: str(p.get("value", "")) for p in data.get("params", [])},
            metrics={
                m["key"]: MetricPoint(float(m["value"]), int(m.get("step", 0)))
                for m in data.get("metrics", [])
            },
            tags={t["key"]: str(t.get("value", "")) for t in data.get("tags", [])},
        )


class MlflowRestClient:
    """A synchronous client of one server; use as a context manager."""

    def __init__(
        self,
        name: str,
        server: MlflowServer,
        *,
        timeout_seconds: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.name = name
        headers = {}
        if server.token is not None:
            headers["Authorization"] = f"Bearer {server.token.get_secret_value()}"
        auth = None
        if server.username is not None and server.password is not None:
            auth = httpx.BasicAuth(server.username, server.password.get_secret_value())
        self._http = httpx.Client(
            base_url=server.url.rstrip("/") + "/api/2.0/mlflow/",
            headers=headers,
            auth=auth,
            timeout=timeout_seconds,
            transport=transport,
        )

    def __enter__(self) -> "MlflowRestClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise SourceUnavailableError(
                f"MLflow server {self.name!r} did not answer: {type(exc).__name__}"
            ) from None
        if response.status_code != 200:
            detail = response.text[:300]
            raise SourceUnavailableError(
                f"MLflow server {self.name!r} answered {response.status_code} to {path}: {detail}"
            )
        body: dict[str, Any] = response.json()
        return body

    def search_finished_runs(
        self, experiment_ids: list[str], filter_string: str, min_end_time_ms: int | None
    ) -> list[MlflowRun]:
        """Every FINISHED run of the experiments matching the filter, oldest end first."""
        clauses = ["attributes.status = 'FINISHED'"]
        if min_end_time_ms is not None:
            clauses.append(f"attributes.end_time >= {int(min_end_time_ms)}")
        if filter_string.strip():
            clauses.append(filter_string.strip())
        runs: list[MlflowRun] = []
        token: str | None = None
        while True:
            body: dict[str, Any] = {
                "experiment_ids": experiment_ids,
                "filter": " AND ".join(clauses),
                "max_results": PAGE_SIZE,
                "order_by": ["attributes.end_time ASC"],
            }
            if token:
                body["page_token"] = token
            page = self._call("POST", "runs/search", json=body)
            runs.extend(MlflowRun.from_json(run) for run in page.get("runs", []))
            token = page.get("next_page_token")
            if not token:
                return runs

    def metric_history(self, run_id: str, key: str) -> list[MetricPoint]:
        points: list[MetricPoint] = []
        token: str | None = None
        while True:
            params: dict[str, Any] = {"run_id": run_id, "metric_key": key, "max_results": 25000}
            if token:
                params["page_token"] = token
            page = self._call("GET", "metrics/get-history", params=params)
            points.extend(
                MetricPoint(float(m["value"]), int(m.get("step", 0)))
                for m in page.get("metrics", [])
            )
            token = page.get("next_page_token")
            if not token:
                return points
