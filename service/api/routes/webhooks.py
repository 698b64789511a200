"""Webhooks: signed POSTs to an allowed URL when fits, recommendations, jobs or the autopilot
change; and the log of their deliveries."""

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status

from service.api.deps import (
    Admin,
    PageLimit,
    PageToken,
    Reader,
    SessionDep,
    SettingsDep,
    Writer,
    page_size,
)
from service.schemas.common import MAX_ID, Page, errors
from service.schemas.experiments import ExperimentName
from service.schemas.webhooks import DeliveryOut, WebhookCreate, WebhookCreated, WebhookOut
from service.store import experiments as experiment_store
from service.store import webhooks as store
from service.store.pagination import decode_token, split_page
from service.webhooks import subscriptions

router = APIRouter(tags=["webhooks"])
WebhookId = Annotated[int, Path(ge=1, le=MAX_ID, description="The webhook's id.", examples=[1])]


@router.post(
    "/v1/webhooks",
    status_code=status.HTTP_201_CREATED,
    summary="Subscribe a URL to events",
    description="POST `fit.succeeded`, `fit.failed`, `recommendation.changed` (the answer at a "
    "watched budget left the previous fit's 90% interval), `job.finished` or "
    "`autopilot.state_changed` events of one experiment (or of all) to `url`, signed with "
    "HMAC-SHA256 (`Scaling-Signature: t=<unix>,v1=<hex>` over `<t>.<body>`; see "
    "docs/integrations.md). The URL must be on the operator's allow-list "
    "(`SCALING_WEBHOOK_ALLOWED_HOSTS`). The answer carries the signing secret: it is never shown "
    "again. Needs `write`.",
    responses=errors(404),
)
def create_webhook(
    body: WebhookCreate, session: SessionDep, settings: SettingsDep, _: Writer
) -> WebhookCreated:
    return subscriptions.create(session, body, settings)


@router.get(
    "/v1/webhooks",
    summary="List webhooks",
    description="Every subscription (secrets are never shown); with `experiment`, that "
    "experiment's and the global ones. Needs `read`.",
    responses=errors(404),
)
def list_webhooks(
    session: SessionDep,
    _: Reader,
    experiment: Annotated[
        ExperimentName | None, Query(description="Only those that see this experiment.")
    ] = None,
) -> list[WebhookOut]:
    experiment_id = (
        experiment_store.get_by_name(session, experiment).id if experiment is not None else None
    )
    return [
        subscriptions.webhook_out(s)
        for s in store.list_subscriptions(session, experiment_id=experiment_id)
    ]


@router.get(
    "/v1/webhooks/{webhook_id}",
    summary="Get a webhook",
    description="Its URL, events and scope (never its secret). Needs `read`.",
    responses=errors(404),
)
def get_webhook(webhook_id: WebhookId, session: SessionDep, _: Reader) -> WebhookOut:
    return subscriptions.webhook_out(store.get_subscription(session, webhook_id))


@router.delete(
    "/v1/webhooks/{webhook_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a webhook",
    description="Stops its deliveries (pending ones are dropped) and deletes its delivery log. "
    "Needs `admin`, as every DELETE.",
    responses=errors(404),
)
def delete_webhook(webhook_id: WebhookId, session: SessionDep, _: Admin) -> Response:
    session.delete(store.get_subscription(session, webhook_id))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/v1/webhooks/{webhook_id}/deliveries",
    summary="List a webhook's deliveries",
    description="Newest first: each event sent (or to be sent) with its status (pending, "
    "succeeded, failed), attempts, the last HTTP status code and error, and the next attempt. "
    "Needs `read`.",
    responses=errors(404),
)
def list_webhook_deliveries(
    webhook_id: WebhookId,
    session: SessionDep,
    settings: SettingsDep,
    _: Reader,
    limit: PageLimit = None,
    page_token: PageToken = None,
) -> Page[DeliveryOut]:
    store.get_subscription(session, webhook_id)
    filters = {"webhook_id": webhook_id}
    size = page_size(limit, settings, default=100)
    rows = store.list_deliveries(session, webhook_id, decode_token(page_token, filters), size + 1)
    page, next_token = split_page(rows, size, filters)
    return Page[DeliveryOut](
        items=[subscriptions.delivery_out(d) for d in page], next_page_token=next_token
    )


@router.post(
    "/v1/webhooks/{webhook_id}:test",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Send a test event",
    description="Queue a `ping` event to this webhook only; the worker sends it in turn, signed "
    "like every other. Watch it in the deliveries. Needs `write`.",
    responses=errors(404),
)
def ping_webhook(
    webhook_id: WebhookId, session: SessionDep, settings: SettingsDep, _: Writer
) -> DeliveryOut:
    return subscriptions.delivery_out(subscriptions.ping(session, webhook_id, settings))
