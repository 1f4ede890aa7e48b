"""Settings base: every service reads its configuration from env vars with its own prefix."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class BaseServiceSettings(BaseSettings):
    """Common settings. A service subclasses this and sets `env_prefix`, e.g. `TASK_SVC_`."""

    model_config = SettingsConfigDict(extra="ignore", env_file=None, frozen=False)

    service_name: str = "service"
    environment: str = "dev"

    database_url: str = Field(
        default="postgresql+asyncpg://localhost:5432/blueprint",
        description="SQLAlchemy URL of the service's own database role (asyncpg driver).",
    )
    db_schema: str = "public"
    db_pool_size: int = 10
    db_max_overflow: int = 10
    db_echo: bool = False

    redis_url: str = "redis://localhost:6379/0"

    # Bearer JWT validation (RS256): a PEM public key file, or a JWKS URL, or both.
    jwt_public_key_file: Path | None = None
    jwt_jwks_url: str | None = None
    jwt_issuer: str = "blueprint-dev"
    jwt_audience: str = "blueprint"
    jwt_leeway_seconds: int = 30

    # How this service authenticates its own calls to other services' /internal routes.
    service_token: str | None = None
    service_token_private_key_file: Path | None = None
    service_token_ttl_seconds: int = 300

    log_level: str = "INFO"
    log_json: bool = True

    otlp_endpoint: str | None = Field(
        default=None,
        description="OTLP/HTTP traces endpoint, e.g. http://localhost:4318/v1/traces. Unset: off.",
    )
    readiness_timeout_seconds: float = 2.0
    max_request_header_bytes: int = Field(
        default=32 * 1024,
        ge=1024,
        description="Largest total size of a request's headers; larger answers 431.",
    )
    max_request_body_bytes: int = Field(
        default=17 * 1024 * 1024,
        ge=1024,
        description="Largest request body (a whole 10,000-node graph fits); larger answers 413.",
    )
    gc_tuning: bool = Field(
        default=True,
        description="After start-up, freeze the objects the app holds and collect the youngest "
        "generation less often: a large request (a whole 10,000-node graph) then costs about half "
        "as much. Off in tests, which build many apps in one process.",
    )

    # Events (outbox relay and consumer). See docs/events.md.
    events_in_process: bool = Field(
        default=True,
        description="Run the relay and consumer inside the API process; off when `python -m "
        "<svc>.worker` runs them as a separate process.",
    )
    events_stream_prefix: str = "events"
    events_stream_retention_hours: float = Field(
        default=168.0, description="Stream entries older than this are trimmed (XADD MINID ~)."
    )
    outbox_retention_hours: float = Field(
        default=72.0, description="Published outbox rows older than this are deleted."
    )
    relay_batch_size: int = 500
    relay_poll_interval_seconds: float = Field(
        default=1.0, description="Polling fallback when no NOTIFY arrives."
    )
    consumer_batch_size: int = 100
    consumer_block_ms: int = 1000
    consumer_claim_idle_ms: int = Field(
        default=30_000,
        description="A delivered entry unacknowledged this long is reclaimed (XAUTOCLAIM) "
        "and retried.",
    )
    consumer_max_attempts: int = Field(
        default=5, description="Deliveries before a failing event goes to the dead-letter stream."
    )
    metrics_sample_interval_seconds: float = Field(
        default=15.0,
        description="How often the events process reads the gauges that come from the database "
        "(e.g. tasks by status).",
    )
    worker_metrics_port: int | None = Field(
        default=None, description="Port of the worker process's /metrics; unset: no endpoint."
    )

    # Where the other services answer (internal HTTP, never through the gateway).
    template_svc_url: str = "http://127.0.0.1:8101"
    task_svc_url: str = "http://127.0.0.1:8102"
    qc_svc_url: str = "http://127.0.0.1:8103"
    notify_svc_url: str = "http://127.0.0.1:8104"
