"""ORM tables. The database is the record of truth for experiments, runs and keys.

Units: params and tokens are counts, flops are FLOPs, loss is nats/token; every float column is
double precision.
"""

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only auto-increments an INTEGER PRIMARY KEY, not a BIGINT one.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
# Ids are never reused: without AUTOINCREMENT SQLite hands the largest id out again once its row
# is deleted (/v1/fits/1 would name another fit). PostgreSQL's sequences never go back.
NEVER_REUSE_IDS = {"sqlite_autoincrement": True}
JsonDict = sa.JSON().with_variant(JSONB(), "postgresql")


def utcnow() -> datetime:
    return datetime.now(UTC)


class UtcDateTime(sa.TypeDecorator[datetime]):
    """Timezone-aware UTC timestamps on every backend (SQLite stores them naive)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use timezone-aware UTC")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


class Experiment(Base):
    """A group of runs fitted together: same data, tokenizer and architecture family."""

    __tablename__ = "experiments"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(sa.String(64), unique=True)
    description: Mapped[str] = mapped_column(sa.Text, default="")
    param_convention: Mapped[str] = mapped_column(sa.String(16))
    flops_formula: Mapped[str] = mapped_column(sa.String(16))
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JsonDict, default=dict)
    corpus_hash: Mapped[str | None] = mapped_column(sa.String(128), default=None)
    tokenizer_hash: Mapped[str | None] = mapped_column(sa.String(128), default=None)
    # Autopilot settings (see service/jobs/autofill.py); null: never configured.
    autofill: Mapped[dict[str, Any] | None] = mapped_column(JsonDict, default=None)
    # Why the autopilot stopped on this data version ({"state", "message", "data_version"}).
    autofill_state: Mapped[dict[str, Any] | None] = mapped_column(JsonDict, default=None)
    # Bumped whenever the runs a fit could use change (added, excluded, included).
    data_version: Mapped[int] = mapped_column(sa.BigInteger, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)

    runs: Mapped[list["Run"]] = relationship(
        back_populates="experiment", cascade="all, delete-orphan", passive_deletes=True
    )

    __table_args__ = (
        sa.CheckConstraint(
            "param_convention IN ('total', 'non_embedding')", name="param_convention"
        ),
        sa.CheckConstraint("flops_formula IN ('6ND', 'reported')", name="flops_formula"),
        NEVER_REUSE_IDS,
    )


LOSS_PROVENANCES = ("end_of_schedule", "after_cooldown", "mid_schedule")
LOSS_PROVENANCE_CHECK = "loss_provenance IN ('end_of_schedule', 'after_cooldown', 'mid_schedule')"
COOLDOWN_CHECK = (
    # IS NOT NULL spelled out: a CHECK that evaluates to NULL passes.
    "(loss_provenance = 'after_cooldown' AND cooldown_fraction IS NOT NULL "
    "AND cooldown_fraction > 0 AND cooldown_fraction <= 1) "
    "OR (loss_provenance <> 'after_cooldown' AND cooldown_fraction IS NULL)"
)


class Run(Base):
    """One training run's final result."""

    __tablename__ = "runs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    experiment_id: Mapped[int] = mapped_column(sa.ForeignKey("experiments.id", ondelete="CASCADE"))
    run_key: Mapped[str | None] = mapped_column(sa.String(200), default=None)
    params: Mapped[float] = mapped_column(sa.Double)
    tokens: Mapped[float] = mapped_column(sa.Double)
    flops: Mapped[float] = mapped_column(sa.Double)
    flops_derived: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    loss: Mapped[float] = mapped_column(sa.Double)
    unique_tokens: Mapped[float | None] = mapped_column(sa.Double, default=None)
    seed: Mapped[int | None] = mapped_column(sa.BigInteger, default=None)
    hyperparameters: Mapped[dict[str, Any]] = mapped_column(JsonDict, default=dict)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JsonDict, default=dict)
    source: Mapped[str] = mapped_column(sa.String(64), default="api")
    body_hash: Mapped[str] = mapped_column(sa.String(64))
    excluded: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    excluded_reason: Mapped[str | None] = mapped_column(sa.Text, default=None)
    # How `loss` was obtained (LOSS_PROVENANCES); rows stored before it existed are
    # end_of_schedule, as is every run whose client does not say.
    loss_provenance: Mapped[str] = mapped_column(
        sa.String(16), default="end_of_schedule", server_default="end_of_schedule"
    )
    # The share of the run's steps spent cooling down (after_cooldown runs only), in (0, 1].
    cooldown_fraction: Mapped[float | None] = mapped_column(sa.Double, default=None)
    # Runs sharing a trunk_key branched from one training trunk: their losses are correlated.
    trunk_key: Mapped[str | None] = mapped_column(sa.String(200), default=None)
    # Points of the stored loss curve (RunCurve); 0: none.
    curve_points: Mapped[int] = mapped_column(sa.Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)

    experiment: Mapped[Experiment] = relationship(back_populates="runs")

    __table_args__ = (
        sa.UniqueConstraint("experiment_id", "run_key"),
        # Keyset pagination walks an experiment's runs in id order.
        sa.Index("ix_runs_experiment_id_id", "experiment_id", "id"),
        sa.CheckConstraint("params > 0 AND tokens > 0 AND flops > 0", name="positive_sizes"),
        sa.CheckConstraint("loss > 0", name="positive_loss"),
        sa.CheckConstraint(LOSS_PROVENANCE_CHECK, name="loss_provenance"),
        sa.CheckConstraint(COOLDOWN_CHECK, name="cooldown_fraction"),
        NEVER_REUSE_IDS,
    )


class RunCurve(Base):
    """A run's loss curve: tokens seen (count) and loss (nats/token) at each recorded point.

    Stored as two little-endian float64 arrays packed into bytes (numpy ``<f8``): exact values,
    16 bytes a point on both backends (10,000 points: 160 kB, about a third of their JSON text),
    and never queried inside SQL, so an array or JSON type would buy nothing. Keyed by the run:
    a curve has no id of its own to reuse.
    """

    __tablename__ = "run_curves"

    run_id: Mapped[int] = mapped_column(
        sa.ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    points: Mapped[int] = mapped_column(sa.Integer)
    tokens: Mapped[bytes] = mapped_column(sa.LargeBinary)
    loss: Mapped[bytes] = mapped_column(sa.LargeBinary)

    __table_args__ = (sa.CheckConstraint("points > 0", name="positive_points"),)


FIT_STATUSES = ("queued", "running", "succeeded", "failed")


class Fit(Base):
    """A scaling-law fit of an experiment's runs, with its provenance.

    A fit is asked for (trigger `request`) or scheduled when data changes (trigger `refit`); at
    most one refit per experiment, law and method waits in the queue at a time.
    """

    __tablename__ = "fits"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    experiment_id: Mapped[int] = mapped_column(sa.ForeignKey("experiments.id", ondelete="CASCADE"))
    law: Mapped[str] = mapped_column(sa.String(32))
    method: Mapped[str] = mapped_column(sa.String(16))
    trigger: Mapped[str] = mapped_column(sa.String(16), default="request")
    status: Mapped[str] = mapped_column(sa.String(16), default="queued")
    settings: Mapped[dict[str, Any]] = mapped_column(JsonDict, default=dict)
    # Deferred: large (bootstrap samples, run ids) and not needed to answer from a cached fit.
    result: Mapped[dict[str, Any] | None] = mapped_column(JsonDict, default=None, deferred=True)
    run_ids: Mapped[list[int] | None] = mapped_column(JsonDict, default=None, deferred=True)
    runs_sha256: Mapped[str | None] = mapped_column(sa.String(64), default=None)
    n_runs: Mapped[int | None] = mapped_column(sa.Integer, default=None)
    data_version: Mapped[int | None] = mapped_column(sa.BigInteger, default=None)
    code_version: Mapped[str] = mapped_column(sa.String(32))
    progress: Mapped[float] = mapped_column(sa.Double, default=0.0)
    error: Mapped[dict[str, Any] | None] = mapped_column(JsonDict, default=None)
    not_before: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    lease_owner: Mapped[str | None] = mapped_column(sa.String(64), default=None)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    duration_s: Mapped[float | None] = mapped_column(sa.Double, default=None)

    experiment: Mapped[Experiment] = relationship()

    __table_args__ = (
        sa.CheckConstraint("status IN ('queued', 'running', 'succeeded', 'failed')", name="status"),
        sa.CheckConstraint("trigger IN ('request', 'refit')", name="trigger"),
        sa.Index("ix_fits_experiment_id_law_method", "experiment_id", "law", "method", "id"),
        sa.Index("ix_fits_status_not_before", "status", "not_before"),
        # The debounce: at most one queued refit per experiment, law and method.
        sa.Index(
            "uq_fits_queued_refit",
            "experiment_id",
            "law",
            "method",
            unique=True,
            postgresql_where=sa.text("status = 'queued' AND trigger = 'refit'"),
            sqlite_where=sa.text("status = 'queued' AND trigger = 'refit'"),
        ),
        NEVER_REUSE_IDS,
    )


JOB_STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")


class Job(Base):
    """A training run the service asked for: the record of truth for the worker.

    queued -> running -> succeeded | failed | cancelled. A running job belongs to one worker
    (lease_owner) while its heartbeat is fresh; a dead worker's job is requeued until
    max_attempts. A succeeded job's result is the run with run_key "job-<id>".
    """

    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    experiment_id: Mapped[int] = mapped_column(sa.ForeignKey("experiments.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(sa.String(16), default="queued")
    origin: Mapped[str] = mapped_column(sa.String(16), default="request")
    params: Mapped[float] = mapped_column(sa.Double)
    tokens: Mapped[float] = mapped_column(sa.Double)
    flops: Mapped[float] = mapped_column(sa.Double)
    config: Mapped[dict[str, Any]] = mapped_column(JsonDict, default=dict)
    attempts: Mapped[int] = mapped_column(sa.Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(sa.Integer, default=3)
    executor: Mapped[str | None] = mapped_column(sa.String(32), default=None)
    handle: Mapped[str | None] = mapped_column(sa.String(200), default=None)
    lease_owner: Mapped[str | None] = mapped_column(sa.String(100), default=None)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    cancel_requested: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    progress: Mapped[float] = mapped_column(sa.Double, default=0.0)
    log_tail: Mapped[str] = mapped_column(sa.Text, default="")
    error: Mapped[str | None] = mapped_column(sa.Text, default=None)
    result_run_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("runs.id", ondelete="SET NULL"), default=None
    )
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)

    experiment: Mapped[Experiment] = relationship()

    __table_args__ = (
        sa.CheckConstraint(
            "status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')", name="status"
        ),
        sa.CheckConstraint("params > 0 AND tokens > 0 AND flops > 0", name="positive_sizes"),
        sa.Index("ix_jobs_status_id", "status", "id"),
        sa.Index("ix_jobs_experiment_id_id", "experiment_id", "id"),
        NEVER_REUSE_IDS,
    )


class Source(Base):
    """Where an experiment's runs are pulled from: today an MLflow tracking server the operator
    configured, by name. ``config`` holds the MLflow experiment ids, filter and field mapping;
    ``watermark_ms`` the largest MLflow end_time read, where the next sync starts."""

    __tablename__ = "sources"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    experiment_id: Mapped[int] = mapped_column(sa.ForeignKey("experiments.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(sa.String(16), default="mlflow")
    server: Mapped[str] = mapped_column(sa.String(64))
    config: Mapped[dict[str, Any]] = mapped_column(JsonDict, default=dict)
    schedule_seconds: Mapped[float | None] = mapped_column(sa.Double, default=None)
    watermark_ms: Mapped[int | None] = mapped_column(sa.BigInteger, default=None)
    next_sync_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    last_sync_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    last_result: Mapped[dict[str, Any] | None] = mapped_column(JsonDict, default=None)
    last_error: Mapped[str | None] = mapped_column(sa.Text, default=None)
    # Results back to MLflow (service/sources/export.py): log each succeeded fit as an MLflow
    # run; after a failure, not again before export_not_before.
    log_results: Mapped[bool] = mapped_column(sa.Boolean, default=False, server_default=sa.false())
    export_not_before: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    last_export_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    last_export_error: Mapped[str | None] = mapped_column(sa.Text, default=None)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    experiment: Mapped[Experiment] = relationship()

    __table_args__ = (
        sa.CheckConstraint("kind IN ('mlflow')", name="kind"),
        sa.Index("ix_sources_next_sync_at", "next_sync_at"),
        sa.Index("ix_sources_experiment_id", "experiment_id"),
        NEVER_REUSE_IDS,
    )


WEBHOOK_EVENTS = (
    "fit.succeeded",
    "fit.failed",
    "recommendation.changed",
    "job.finished",
    "autopilot.state_changed",
)
DELIVERY_STATUSES = ("pending", "succeeded", "failed")


class WebhookSubscription(Base):
    """Where to POST which events: of one experiment, or of all (experiment_id null).

    The signing secret is stored encrypted (service/webhooks/secrets.py): HMAC needs it back.
    """

    __tablename__ = "webhook_subscriptions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    experiment_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("experiments.id", ondelete="CASCADE"), default=None
    )
    url: Mapped[str] = mapped_column(sa.String(2000))
    events: Mapped[list[str]] = mapped_column(JsonDict)
    # FLOP budgets whose recommendation is watched; null: the autopilot's target_flops.
    watch_flops: Mapped[list[float] | None] = mapped_column(JsonDict, default=None)
    description: Mapped[str] = mapped_column(sa.String(200), default="")
    secret_encrypted: Mapped[str] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    experiment: Mapped[Experiment | None] = relationship()

    __table_args__ = (
        sa.Index("ix_webhook_subscriptions_experiment_id", "experiment_id"),
        NEVER_REUSE_IDS,
    )


class WebhookEvent(Base):
    """Something that happened, once, whatever the number of subscribers. Its id is the
    `Scaling-Event-Id` receivers deduplicate on; experiment is a name (events outlive it)."""

    __tablename__ = "webhook_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    type: Mapped[str] = mapped_column(sa.String(40))
    experiment: Mapped[str | None] = mapped_column(sa.String(64), default=None)
    data: Mapped[dict[str, Any]] = mapped_column(JsonDict)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    __table_args__ = (NEVER_REUSE_IDS,)


class WebhookDelivery(Base):
    """The outbox and the delivery log: one event to one subscription.

    pending -> succeeded | failed. A worker holds a pending delivery while `lease_until` is in
    the future; one that crashed mid-delivery lets its lease run out and another delivers it.
    A subscription's deliveries go out in id order: the next waits until this one is settled.
    """

    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    subscription_id: Mapped[int] = mapped_column(
        sa.ForeignKey("webhook_subscriptions.id", ondelete="CASCADE")
    )
    event_id: Mapped[int] = mapped_column(sa.ForeignKey("webhook_events.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(sa.String(16), default="pending")
    attempts: Mapped[int] = mapped_column(sa.Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    lease_owner: Mapped[str | None] = mapped_column(sa.String(100), default=None)
    lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    response_code: Mapped[int | None] = mapped_column(sa.Integer, default=None)
    last_error: Mapped[str | None] = mapped_column(sa.Text, default=None)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)

    event: Mapped[WebhookEvent] = relationship()

    __table_args__ = (
        sa.CheckConstraint("status IN ('pending', 'succeeded', 'failed')", name="status"),
        sa.Index("ix_webhook_deliveries_subscription_id_id", "subscription_id", "id"),
        sa.Index("ix_webhook_deliveries_status_next_attempt_at", "status", "next_attempt_at"),
        sa.Index("ix_webhook_deliveries_event_id", "event_id"),
        NEVER_REUSE_IDS,
    )


class SourceExport(Base):
    """A fit logged to MLflow by a source: at most one row (one MLflow run) per source and fit."""

    __tablename__ = "source_exports"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    source_id: Mapped[int] = mapped_column(sa.ForeignKey("sources.id", ondelete="CASCADE"))
    fit_id: Mapped[int] = mapped_column(sa.ForeignKey("fits.id", ondelete="CASCADE"))
    mlflow_experiment_id: Mapped[str] = mapped_column(sa.String(64))
    mlflow_run_id: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    __table_args__ = (
        sa.UniqueConstraint("source_id", "fit_id"),
        sa.Index("ix_source_exports_fit_id", "fit_id"),
        NEVER_REUSE_IDS,
    )


class ApiKey(Base):
    """An API key. Only a SHA-256 of its secret part is stored."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    prefix: Mapped[str] = mapped_column(sa.String(32), unique=True)
    secret_sha256: Mapped[str] = mapped_column(sa.String(64))
    name: Mapped[str] = mapped_column(sa.String(200))
    scopes: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)

    __table_args__ = (NEVER_REUSE_IDS,)


class IdempotencyRecord(Base):
    """The first response to a POST that carried an `Idempotency-Key` header."""

    __tablename__ = "idempotency_records"

    owner: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    key: Mapped[str] = mapped_column(sa.String(200), primary_key=True)
    request_sha256: Mapped[str] = mapped_column(sa.String(64))
    status_code: Mapped[int] = mapped_column(sa.Integer)
    response_body: Mapped[bytes] = mapped_column(sa.LargeBinary)
    content_type: Mapped[str] = mapped_column(sa.String(100))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
