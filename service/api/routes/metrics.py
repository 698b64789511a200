"""`GET /metrics`: Prometheus text exposition (left out of the OpenAPI document)."""

from fastapi import APIRouter
from fastapi.responses import Response

from service import metrics

router = APIRouter()


@router.get("/metrics", include_in_schema=False)
def prometheus_metrics() -> Response:
    return Response(metrics.render(), media_type=metrics.CONTENT_TYPE)
