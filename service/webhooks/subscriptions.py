"""Subscriptions over the database: create (URL allowed, secret encrypted), present, test."""

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from service.schemas.webhooks import (
    DeliveryOut,
    EventOut,
    WebhookCreate,
    WebhookCreated,
    WebhookOut,
)
from service.settings import Settings
from service.store import experiments as experiment_store
from service.store import webhooks as store
from service.store.models import WebhookDelivery, WebhookSubscription
from service.webhooks import signing
from service.webhooks.allowlist import check_url
from service.webhooks.delivery import event_data
from service.webhooks.secrets import SecretBox


def create(session: Session, body: WebhookCreate, settings: Settings) -> WebhookCreated:
    """Store a subscription; the answer carries its secret, the only time it is shown."""
    box = SecretBox(settings.webhook_secret_key)
    url = check_url(body.url, settings.webhook_allowed_hosts)
    experiment = experiment_store.get_by_name(session, body.experiment) if body.experiment else None
    secret = body.secret.get_secret_value() if body.secret is not None else signing.new_secret()
    subscription = WebhookSubscription(
        experiment_id=experiment.id if experiment is not None else None,
        url=url,
        events=list(body.events),
        watch_flops=body.watch_flops,
        description=body.description,
        secret_encrypted=box.encrypt(secret),
        created_at=datetime.now(UTC),
    )
    session.add(subscription)
    session.flush()
    return WebhookCreated(**webhook_out(subscription).model_dump(), secret=secret)


def webhook_out(subscription: WebhookSubscription) -> WebhookOut:
    return WebhookOut.model_validate(
        {
            "id": subscription.id,
            "url": subscription.url,
            "events": subscription.events,
            "experiment": subscription.experiment.name if subscription.experiment else None,
            "watch_flops": subscription.watch_flops,
            "description": subscription.description,
            "created_at": subscription.created_at,
        }
    )


def delivery_out(delivery: WebhookDelivery) -> DeliveryOut:
    event = delivery.event
    return DeliveryOut(
        id=delivery.id,
        webhook_id=delivery.subscription_id,
        event=EventOut.model_validate(
            {
                "id": event.id,
                "type": event.type,
                "created_at": event.created_at,
                "experiment": event.experiment,
                "data": event_data(event),
            }
        ),
        status=delivery.status,
        attempts=delivery.attempts,
        response_code=delivery.response_code,
        last_error=delivery.last_error,
        next_attempt_at=delivery.next_attempt_at if delivery.status == "pending" else None,
        created_at=delivery.created_at,
        last_attempt_at=delivery.last_attempt_at,
        finished_at=delivery.finished_at,
    )


def ping(session: Session, subscription_id: int, settings: Settings) -> WebhookDelivery:
    """Queue a `ping` event to this subscription only (the worker sends it in turn)."""
    subscription = store.get_subscription(session, subscription_id)
    check_url(subscription.url, settings.webhook_allowed_hosts)
    experiment = subscription.experiment
    event = store.add_event(
        session,
        "ping",
        experiment.name if experiment else None,
        {"webhook_id": subscription.id},
        [subscription],
        datetime.now(UTC),
    )
    return session.scalars(
        sa.select(WebhookDelivery).where(WebhookDelivery.event_id == event.id)
    ).one()
