"""Prometheus metrics and the typed helpers the rest of the service calls to record them.

Metrics live in prometheus-client's default registry. With several uvicorn workers each worker
is its own process, so `PROMETHEUS_MULTIPROC_DIR` must name a directory shared by all of them
(`scaling-service serve --workers N` creates a fresh one): every process writes its samples
there and `/metrics` aggregates them with a `MultiProcessCollector`, whichever worker answers.
The variable has to be set before prometheus-client is imported, i.e. before workers start.
"""

import os
import re
import time
from collections.abc import Mapping
from pathlib import Path

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess as _multiprocess

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST
UNMATCHED_ROUTE = "<unmatched>"

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_FIT_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0)

HTTP_REQUEST_DURATION = Histogram(
    "scaling_http_request_duration_seconds",
    "HTTP request latency by route template, method and status class.",
    ["route", "method", "status_class"],
    buckets=_LATENCY_BUCKETS,
)
HTTP_REQUESTS_IN_PROGRESS = Gauge(
    "scaling_http_requests_in_progress",
    "HTTP requests being served now.",
    ["method"],
    multiprocess_mode="livesum",
)
FIT_DURATION = Histogram(
    "scaling_fit_duration_seconds",
    "Wall time of one scaling-law fit by law and method.",
    ["law", "method"],
    buckets=_FIT_BUCKETS,
)
JOBS = Gauge(
    "scaling_jobs",
    "Jobs by state, as last counted by any process.",
    ["state"],
    multiprocess_mode="mostrecent",
)
QUEUE_DEPTH = Gauge(
    "scaling_job_queue_depth",
    "Jobs waiting to be picked up, as last counted by any process.",
    multiprocess_mode="mostrecent",
)
WORKER_HEARTBEAT = Gauge(
    "scaling_worker_last_heartbeat_timestamp_seconds",
    "Unix time of each job worker's last heartbeat.",
    ["worker_id"],
    multiprocess_mode="max",
)

_job_states_seen: set[str] = set()


def status_class(status: int) -> str:
    """`2xx`, `4xx`, ... (a bounded label)."""
    return f"{status // 100}xx" if 100 <= status < 600 else "other"


# The labelled children of the per-request metrics, looked up once per label set: `labels()`
# validates and hashes its arguments on every call, a cost every request would pay three times.
# Routes are templates and methods the few HTTP verbs, so these stay small.
_durations: dict[tuple[str, str, int], Histogram] = {}
_in_progress: dict[str, Gauge] = {}


def observe_request(route: str, method: str, status: int, seconds: float) -> None:
    child = _durations.get((route, method, status))
    if child is None:
        child = HTTP_REQUEST_DURATION.labels(route, method, status_class(status))
        _durations[(route, method, status)] = child
    child.observe(seconds)


def _in_progress_of(method: str) -> Gauge:
    child = _in_progress.get(method)
    if child is None:
        child = _in_progress[method] = HTTP_REQUESTS_IN_PROGRESS.labels(method)
    return child


def request_started(method: str) -> None:
    _in_progress_of(method).inc()


def request_finished(method: str) -> None:
    _in_progress_of(method).dec()


def observe_fit_duration(law: str, method: str, seconds: float) -> None:
    """Record how long one fit took (`law`: chinchilla, kaplan, ...; `method`: parametric, ...)."""
    FIT_DURATION.labels(law, method).observe(seconds)


def set_job_states(counts: Mapping[str, int]) -> None:
    """Publish the number of jobs in each state; states seen before and now absent read 0."""
    for state in _job_states_seen - counts.keys():
        JOBS.labels(state).set(0)
    for state, count in counts.items():
        JOBS.labels(state).set(count)
    _job_states_seen.update(counts)


def set_queue_depth(n: int) -> None:
    """Publish how many jobs wait in the queue."""
    QUEUE_DEPTH.set(n)


def worker_heartbeat(worker_id: str) -> None:
    """Record that job worker `worker_id` is alive now."""
    WORKER_HEARTBEAT.labels(worker_id).set(time.time())


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


def render() -> bytes:
    """The text exposition of every metric: aggregated over all processes in multiprocess mode."""
    if multiprocess_dir() is None:
        return generate_latest(REGISTRY)
    registry = CollectorRegistry()
    _multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return generate_latest(registry)


def mark_process_dead(pid: int) -> None:
    """Drop the live-gauge samples of a process that exited (multiprocess mode only)."""
    if (path := multiprocess_dir()) is not None:
        _multiprocess.mark_process_dead(pid, path)  # type: ignore[no-untyped-call]


_PID_FILE = re.compile(r"_(\d+)\.db$")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def reap_dead_processes(path: str | Path) -> list[int]:
    """Mark dead every process that left live-gauge files in `path` and no longer runs (a worker
    that crashed or was killed never marks itself). Returns the pids marked."""
    pids: set[int] = set()
    for file in Path(path).glob("gauge_live*_*.db"):
        if (match := _PID_FILE.search(file.name)) is not None:
            pids.add(int(match.group(1)))
    dead = sorted(pid for pid in pids if not _alive(pid))
    for pid in dead:
        _multiprocess.mark_process_dead(pid, str(path))  # type: ignore[no-untyped-call]
    return dead
