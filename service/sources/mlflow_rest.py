"""The few calls of MLflow's REST API (2.0) that a sync and an export need, over httpx.

Artifacts go through the tracking server's artifact proxy (``mlflow server`` serves it unless
started with ``--no-serve-artifacts``): ``PUT /api/2.0/mlflow-artifacts/artifacts/<path>``, for
runs whose artifact_uri is ``mlflow-artifacts:/...`` or a URL under that route.

The server's address and credentials are the operator's settings (SCALING_MLFLOW_SERVERS);
nothing here is logged, and errors name the server, never its credentials.
"""

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote, urlsplit

import httpx
from pydantic import BaseModel, SecretStr, field_validator

from service.errors import SourceUnavailableError

PAGE_SIZE = 1000
# runs/log-batch takes at most 100 params and 1000 metrics, params + metrics + tags <= 1000.
MAX_BATCH_PARAMS = 100
MAX_BATCH_ITEMS = 1000
ARTIFACTS_ROUTE = "/api/2.0/mlflow-artifacts/artifacts/"
RunStatus = Literal["RUNNING", "FINISHED", "FAILED", "KILLED"]


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
    status: str = "FINISHED"
    artifact_uri: str = ""

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
            status=str(info.get("status", "")),
            artifact_uri=str(info.get("artifact_uri", "")),
        )


class UnproxiedArtifactsError(Exception):
    """The run's artifact store is not served by the tracking server's artifact proxy."""


def proxied_artifact_path(artifact_uri: str) -> str:
    """The path under the artifact proxy's route where a run's artifacts live.

    ``mlflow-artifacts:/1/<run>/artifacts`` (or with a host) and
    ``http(s)://host/api/2.0/mlflow-artifacts/artifacts/1/<run>/artifacts`` both give
    ``1/<run>/artifacts``; any other store (s3://, a server-local path) raises
    UnproxiedArtifactsError: only the tracking server could write there.
    """
    parts = urlsplit(artifact_uri)
    if parts.scheme == "mlflow-artifacts":
        path = parts.path
    elif parts.scheme in ("http", "https") and ARTIFACTS_ROUTE in parts.path:
        path = parts.path.split(ARTIFACTS_ROUTE, 1)[1]
    else:
        scheme = parts.scheme or "a local path"
        raise UnproxiedArtifactsError(
            f"the run's artifact store ({scheme}) is not the server's artifact proxy"
        )
    segments = [segment for segment in path.split("/") if segment]
    if not segments or any(segment in (".", "..") for segment in segments):
        raise UnproxiedArtifactsError(f"unusable artifact path {path!r}")
    return "/".join(segments)


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
            base_url=server.url.rstrip("/") + "/api/2.0/",
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
        """One call under /api/2.0/mlflow/ (or /api/2.0/ for a path starting with mlflow-)."""
        if not path.startswith("mlflow-"):
            path = "mlflow/" + path
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
        body: dict[str, Any] = response.json() if response.content else {}
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

    def search_runs(self, experiment_ids: list[str], filter_string: str) -> list[MlflowRun]:
        """The active runs (any status) matching the filter: at most one page."""
        body = {
            "experiment_ids": experiment_ids,
            "filter": filter_string,
            "max_results": PAGE_SIZE,
            "run_view_type": "ACTIVE_ONLY",
        }
        page = self._call("POST", "runs/search", json=body)
        return [MlflowRun.from_json(run) for run in page.get("runs", [])]

    def create_run(
        self, experiment_id: str, *, run_name: str, tags: Mapping[str, str]
    ) -> MlflowRun:
        """A new RUNNING run, started now."""
        body = {
            "experiment_id": experiment_id,
            "run_name": run_name,
            "start_time": _now_ms(),
            "tags": [{"key": key, "value": value} for key, value in tags.items()],
        }
        return MlflowRun.from_json(self._call("POST", "runs/create", json=body)["run"])

    def log_batch(
        self,
        run_id: str,
        *,
        params: Mapping[str, str] | None = None,
        metrics: Mapping[str, float] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> None:
        """Params, metrics (at step 0, now) and tags, in as many requests as MLflow's limits ask."""
        now = _now_ms()
        items: list[tuple[str, dict[str, Any]]] = [
            ("params", {"key": k, "value": v}) for k, v in (params or {}).items()
        ]
        items += [
            ("metrics", {"key": k, "value": v, "timestamp": now, "step": 0})
            for k, v in (metrics or {}).items()
        ]
        items += [("tags", {"key": k, "value": v}) for k, v in (tags or {}).items()]
        while items:
            batch: dict[str, list[dict[str, Any]]] = {"params": [], "metrics": [], "tags": []}
            taken = 0
            while items and taken < MAX_BATCH_ITEMS:
                kind, item = items[0]
                if kind == "params" and len(batch["params"]) >= MAX_BATCH_PARAMS:
                    break
                batch[kind].append(item)
                items.pop(0)
                taken += 1
            self._call("POST", "runs/log-batch", json={"run_id": run_id, **batch})

    def update_run(self, run_id: str, status: RunStatus) -> None:
        """Set the run's status; a status other than RUNNING ends it now."""
        body: dict[str, Any] = {"run_id": run_id, "status": status}
        if status != "RUNNING":
            body["end_time"] = _now_ms()
        self._call("POST", "runs/update", json=body)

    def delete_run(self, run_id: str) -> None:
        """Mark the run deleted (MLflow keeps it in the trash; searches skip it)."""
        self._call("POST", "runs/delete", json={"run_id": run_id})

    def upload_artifact(
        self, run: MlflowRun, path: str, content: bytes, *, content_type: str
    ) -> None:
        """Put ``content`` at ``path`` (relative, '/'-separated) among the run's artifacts,
        through the server's artifact proxy; UnproxiedArtifactsError when the run's artifacts
        live elsewhere."""
        root = proxied_artifact_path(run.artifact_uri)
        target = "/".join(quote(segment, safe="") for segment in f"{root}/{path}".split("/"))
        self._call(
            "PUT",
            f"mlflow-artifacts/artifacts/{target}",
            content=content,
            headers={"Content-Type": content_type},
        )


def _now_ms() -> int:
    return int(time.time() * 1000)
