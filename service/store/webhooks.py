"""Queries on webhooks: subscriptions, the event outbox, and claiming and settling deliveries."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from service.errors import NotFoundError
from service.store.models import WebhookDelivery, WebhookEvent, WebhookSubscription
from service.store.pagination import page_of


def get_subscription(session: Session, subscription_id: int) -> WebhookSubscription:
    subscription = session.get(WebhookSubscription, subscription_id)
    if subscription is None:
        raise NotFoundError(f"webhook {subscription_id} not found", subscription_id=subscription_id)
    return subscription


def list_subscriptions(
    session: Session, *, experiment_id: int | None = None
) -> list[WebhookSubscription]:
    """Every subscription; with `experiment_id`, that experiment's and the global ones."""
    query = sa.select(WebhookSubscription).order_by(WebhookSubscription.id)
    if experiment_id is not None:
        query = query.where(
            sa.or_(
                WebhookSubscription.experiment_id == experiment_id,
                WebhookSubscription.experiment_id.is_(None),
            )
        )
    return list(session.scalars(query))


def subscribers(
    session: Session, event_type: str, experiment_id: int | None
) -> list[WebhookSubscription]:
    """The subscriptions that want `event_type` about this experiment (None: global only)."""
    candidates = (
        list_subscriptions(session, experiment_id=experiment_id)
        if experiment_id is not None
        else [s for s in list_subscriptions(session) if s.experiment_id is None]
    )
    # A handful of subscriptions per server: filtering JSON lists here beats a dialect-specific
    # JSON containment query.
    return [s for s in candidates if event_type in s.events]


def add_event(
    session: Session,
    event_type: str,
    experiment: str | None,
    data: dict[str, Any],
    subscriptions: list[WebhookSubscription],
    now: datetime,
) -> WebhookEvent:
    """The event and one pending delivery per subscription, in the caller's transaction."""
    event = WebhookEvent(type=event_type, experiment=experiment, data=data, created_at=now)
    session.add(event)
    session.flush()
    session.add_all(
        WebhookDelivery(
            subscription_id=subscription.id,
            event_id=event.id,
            status="pending",
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
        for subscription in subscriptions
    )
    session.flush()
    return event


def _claimable(now: datetime) -> sa.ColumnElement[bool]:
    return sa.and_(
        WebhookDelivery.status == "pending",
        WebhookDelivery.next_attempt_at <= now,
        sa.or_(WebhookDelivery.lease_until.is_(None), WebhookDelivery.lease_until < now),
    )


def claim_due(
    session: Session, owner: str, lease: timedelta, now: datetime, limit: int
) -> list[int]:
    """Lease up to `limit` due deliveries to `owner`; returns their ids.

    Only each subscription's oldest pending delivery is a candidate, so a subscription's
    events go out in order: the next waits until this one succeeded or was given up. The
    guarded UPDATE gives each delivery to one claimant on every backend.
    """
    heads = (
        sa.select(sa.func.min(WebhookDelivery.id))
        .where(WebhookDelivery.status == "pending")
        .group_by(WebhookDelivery.subscription_id)
    )
    candidates = session.scalars(
        sa.select(WebhookDelivery.id)
        .where(WebhookDelivery.id.in_(heads), _claimable(now))
        .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
        .limit(limit)
    ).all()
    claimed = []
    for delivery_id in candidates:
        result = session.execute(
            sa.update(WebhookDelivery)
            .where(WebhookDelivery.id == delivery_id, _claimable(now))
            .values(lease_owner=owner, lease_until=now + lease)
        )
        assert isinstance(result, sa.CursorResult)  # an UPDATE's result counts its rows
        if result.rowcount == 1:
            claimed.append(delivery_id)
    return claimed


@dataclass(frozen=True)
class Attempt:
    """What one POST came to."""

    succeeded: bool
    response_code: int | None
    error: str | None
    at: datetime


def settle(
    session: Session,
    delivery_id: int,
    owner: str,
    attempt: Attempt,
    *,
    retry_at: datetime | None,
) -> bool:
    """Record an attempt of a delivery `owner` holds: succeeded, retry at `retry_at`, or given
    up (failed) when `retry_at` is None. False when the lease was lost (nothing recorded)."""
    values: dict[str, Any] = {
        "attempts": WebhookDelivery.attempts + 1,
        "response_code": attempt.response_code,
        "last_error": attempt.error,
        "last_attempt_at": attempt.at,
        "lease_owner": None,
        "lease_until": None,
    }
    if attempt.succeeded:
        values |= {"status": "succeeded", "finished_at": attempt.at}
    elif retry_at is None:
        values |= {"status": "failed", "finished_at": attempt.at}
    else:
        values |= {"next_attempt_at": retry_at}
    result = session.execute(
        sa.update(WebhookDelivery)
        .where(
            WebhookDelivery.id == delivery_id,
            WebhookDelivery.lease_owner == owner,
            WebhookDelivery.status == "pending",
        )
        .values(**values)
    )
    assert isinstance(result, sa.CursorResult)
    return result.rowcount == 1


def recent_deliveries(session: Session, limit: int) -> list[WebhookDelivery]:
    """The latest deliveries of every subscription, newest first (the dashboard)."""
    return list(
        session.scalars(sa.select(WebhookDelivery).order_by(WebhookDelivery.id.desc()).limit(limit))
    )


def list_deliveries(
    session: Session, subscription_id: int, after_id: int | None, limit: int
) -> list[WebhookDelivery]:
    """A subscription's deliveries, newest first."""
    where = (WebhookDelivery.subscription_id == subscription_id,)
    return page_of(session, WebhookDelivery, where, after_id, limit, newest_first=True)


def count_pending(session: Session) -> int:
    return (
        session.scalar(sa.select(sa.func.count()).where(WebhookDelivery.status == "pending")) or 0
    )
