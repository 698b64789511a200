"""Service settings, read from the environment with the prefix `SCALING_`."""

from functools import lru_cache
from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from service.sources.mlflow_rest import MlflowServer
from service.webhooks.allowlist import AllowedHost, parse_allowed_hosts

DEFAULT_SQLITE_PATH = Path("var") / "scaling.db"


class Settings(BaseSettings):
    """Everything the service reads from its environment (`SCALING_<NAME>`)."""

    model_config = SettingsConfigDict(env_prefix="SCALING_", extra="ignore")

    database_url: str = Field(
        default=f"sqlite:///{DEFAULT_SQLITE_PATH}",
        description="SQLAlchemy URL: sqlite:///path or postgresql+psycopg://user@host:port/db.",
    )
    auth: bool = Field(default=True, description="Require API keys (bearer tokens).")
    bootstrap_admin_key: SecretStr | None = Field(
        default=None,
        description="If set, an admin key with this exact value is created at start.",
    )
    auth_cache_seconds: float = Field(
        default=5.0,
        ge=0,
        description="Remember a verified key this long; a revocation made on another replica "
        "takes effect within it (0: check the database on every request).",
    )
    allow_remote_without_auth: bool = Field(
        default=False,
        description="Permit auth=false on a non-loopback address (unsafe; for closed networks).",
    )
    max_batch_runs: int = Field(default=10_000, ge=1, description="Most runs in one POST.")
    max_page_size: int = Field(default=1000, ge=1, description="Largest `limit` of a list call.")
    max_body_bytes: int = Field(
        default=32 * 1024 * 1024, ge=1024, description="Largest request body accepted (bytes)."
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Origins allowed by CORS (comma separated); none = off."
    )
    db_pool_size: int = Field(default=5, ge=1, description="Connections per process (PostgreSQL).")
    retry_after_seconds: int = Field(
        default=5, ge=1, description="Retry-After sent with 503 when the database is unreachable."
    )
    max_bootstrap: int = Field(default=10_000, ge=0, description="Most bootstrap resamples.")
    fit_inline_max_bootstrap: int = Field(
        default=200,
        ge=0,
        description="Fits with at most this many resamples answer at once (201); larger ones "
        "run in the background (202).",
    )
    fit_inline_max_concurrent: int = Field(
        default=2,
        ge=0,
        description="Inline fits computing at once in one process (each holds a database "
        "connection); more go to the background queue (202) instead of exhausting the pool.",
    )
    refit_debounce_seconds: float = Field(
        default=2.0, ge=0, description="Wait this long after the last data change to refit."
    )
    fit_runner: bool = Field(
        default=True, description="Run queued fits and refits in a thread of this process."
    )
    fit_timeout_seconds: float = Field(
        default=600.0,
        gt=0,
        description="A fit running longer than this fails with the reason `fit_timeout` (checked "
        "as it reports progress; an inline fit answers 422).",
    )
    fit_lease_seconds: float = Field(
        default=120.0, gt=0, description="A running fit silent this long is taken over."
    )
    answer_cache_seconds: float = Field(
        default=1.0,
        ge=0,
        description="Keep GET recommendation answers this long; writes here drop them at once, "
        "another replica's writes show within it (0: no cache).",
    )
    rate_limit_per_second: float = Field(
        default=0.0,
        ge=0,
        description="Requests a second per API key (per address without one), in each process; "
        "above it 429 with Retry-After. 0: no limit.",
    )
    rate_limit_burst: int = Field(
        default=20, ge=1, description="Requests a key may send at once before the rate applies."
    )
    log_level: str = Field(default="info", description="Log level: debug, info, warning, error.")
    metrics_enabled: bool = Field(
        default=True, description="Serve Prometheus metrics at GET /metrics (no auth)."
    )
    mlflow_servers: dict[str, MlflowServer] = Field(
        default_factory=dict,
        description="MLflow tracking servers that sources may read (and log fits to), by name, "
        "as JSON: "
        '{"main": {"url": "http://mlflow:5000", "token": "..."}} (or "username" and '
        '"password"). API callers name a server; they never give an address or credentials.',
    )

    webhook_allowed_hosts: Annotated[list[AllowedHost], NoDecode] = Field(
        default_factory=list,
        description="Where webhooks may be sent, comma separated: `host`, `host:port` or "
        "`*.domain` (https only), `http://host[:port]` to allow plain http too; port `*` for "
        "any port. Empty: webhooks are refused.",
    )
    webhook_secret_key: SecretStr | None = Field(
        default=None,
        description="Fernet key(s) encrypting the webhooks' signing secrets at rest, comma "
        "separated, newest first (older ones still decrypt). Unset: webhooks are refused.",
    )
    webhook_timeout_seconds: float = Field(
        default=10.0, gt=0, le=300, description="How long one delivery waits for an answer."
    )
    webhook_lease_seconds: float = Field(
        default=60.0,
        gt=0,
        description="A delivery a worker claimed but did not settle in this long (a crash) is "
        "delivered again; longer than the timeout.",
    )
    webhook_max_attempts: int = Field(
        default=8, ge=1, le=100, description="Attempts before a delivery is given up (failed)."
    )
    webhook_backoff_seconds: float = Field(
        default=10.0, ge=0, description="Wait after the first failed attempt; doubles each time."
    )
    webhook_backoff_max_seconds: float = Field(
        default=3600.0, ge=0, description="The longest wait between two attempts."
    )

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [origin.strip() for origin in value.split(",") if origin.strip()]
        return value

    @field_validator("webhook_secret_key", mode="before")
    @classmethod
    def _empty_key_is_unset(cls, value: object) -> object:
        # docker-compose passes an unset variable through as "": webhooks off, not a bad key.
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("webhook_allowed_hosts", mode="before")
    @classmethod
    def _parse_allowed_hosts(cls, value: object) -> object:
        return parse_allowed_hosts(value)

    @model_validator(mode="after")
    def _lease_outlasts_timeout(self) -> "Settings":
        # A lease shorter than a delivery's timeout would hand a slow delivery to a second worker
        # while the first still waits for its answer: the receiver would see it twice.
        if self.webhook_lease_seconds <= self.webhook_timeout_seconds:
            raise ValueError(
                "SCALING_WEBHOOK_LEASE_SECONDS must be longer than SCALING_WEBHOOK_TIMEOUT_SECONDS"
            )
        return self


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
