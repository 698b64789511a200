"""`GET /metrics`: Prometheus text exposition (left out of the OpenAPI document).

The job gauges (`scaling_jobs{state}`, `scaling_job_queue_depth`) are counted from the database
when scraped (at most every few seconds), so any API process reports the queue as it is, not as
some worker last saw it in its own process.
"""

import time

import sqlalchemy as sa
from fastapi import APIRouter, Request
from fastapi.responses import Response

from service import metrics
from service.api.deps import SessionFactoryDep
from service.db import session_scope
from service.store import jobs as job_store

router = APIRouter()
COUNT_EVERY_SECONDS = 5.0


def _refresh_job_gauges(request: Request, sessions: SessionFactoryDep) -> None:
    state = request.app.state
    now = time.monotonic()
    if now - getattr(state, "job_gauges_at", -COUNT_EVERY_SECONDS) < COUNT_EVERY_SECONDS:
        return
    try:
        with session_scope(sessions) as session:
            counts = job_store.count_by_status(session)
    except sa.exc.OperationalError:
        return  # a scrape during an outage shows the last counts; /readyz reports the outage
    state.job_gauges_at = now
    metrics.set_job_states(counts)
    metrics.set_queue_depth(counts.get("queued", 0))


@router.get("/metrics", include_in_schema=False)
def prometheus_metrics(request: Request, sessions: SessionFactoryDep) -> Response:
    _refresh_job_gauges(request, sessions)
    return Response(metrics.render(), media_type=metrics.CONTENT_TYPE)
