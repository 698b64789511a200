"""Webhooks: subscriptions, and the log of their deliveries."""

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from service.schemas.common import SafeText, StrictModel
from service.schemas.experiments import ExperimentName
from service.schemas.jobs import Flops

EventType = Literal[
    "fit.succeeded",
    "fit.failed",
    "recommendation.changed",
    "job.finished",
    "autopilot.state_changed",
]
# `ping` is what POST /v1/webhooks/{id}:test sends; nobody subscribes to it.
DeliveredEventType = Literal[EventType, "ping"]
DeliveryStatus = Literal["pending", "succeeded", "failed"]


class WebhookCreate(StrictModel):
    """Where to POST which events. The URL must be on the operator's allow-list
    (SCALING_WEBHOOK_ALLOWED_HOSTS)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "url": "https://hooks.example.com/scaling",
                    "events": ["fit.succeeded", "recommendation.changed"],
                    "experiment": "chinchilla-massivetext",
                    "watch_flops": [1e24],
                }
            ]
        },
    )

    url: SafeText = Field(min_length=1, max_length=2000, description="http(s) URL to POST to.")
    events: list[EventType] = Field(min_length=1, max_length=5, description="Events to send.")
    experiment: ExperimentName | None = Field(
        default=None, description="Only this experiment's events; null: every experiment's."
    )
    watch_flops: list[Flops] | None = Field(
        default=None,
        max_length=10,
        description="Training budgets (FLOPs) whose recommendation is watched for "
        "`recommendation.changed`; null: the experiment's autopilot target_flops.",
    )
    description: SafeText = Field(default="", max_length=200)
    secret: SecretStr | None = Field(
        default=None,
        min_length=16,
        max_length=200,
        description="The signing secret; left out, the server makes one. Either way it is "
        "answered once, now, and never shown again.",
    )

    @field_validator("events")
    @classmethod
    def _unique(cls, events: list[EventType]) -> list[EventType]:
        return list(dict.fromkeys(events))


class WebhookOut(BaseModel):
    id: int
    url: str
    events: list[EventType]
    experiment: str | None = Field(description="Null: events of every experiment.")
    watch_flops: list[float] | None
    description: str
    created_at: datetime


class WebhookCreated(WebhookOut):
    secret: str = Field(
        description="The signing secret: keep it now, it is never shown again (the server keeps "
        "it encrypted)."
    )


class EventOut(BaseModel):
    """What a delivery's body carries: `{id, type, created_at, experiment, data}`."""

    id: int = Field(description="Also the `Scaling-Event-Id` header: deduplicate on it.")
    type: DeliveredEventType
    created_at: datetime
    experiment: str | None
    data: dict[str, Any]


class DeliveryOut(BaseModel):
    id: int
    webhook_id: int
    event: EventOut
    status: DeliveryStatus = Field(
        description="pending (not yet acknowledged; retried with backoff), succeeded (a 2xx "
        "answer), failed (given up after SCALING_WEBHOOK_MAX_ATTEMPTS, or not allowed any more)."
    )
    attempts: int
    response_code: int | None = Field(description="The HTTP status of the last attempt.")
    last_error: str | None
    next_attempt_at: datetime | None = Field(description="When pending: the next try.")
    created_at: datetime
    last_attempt_at: datetime | None
    finished_at: datetime | None
