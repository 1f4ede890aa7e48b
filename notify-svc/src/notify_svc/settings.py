"""notify-svc settings: env vars prefixed `NOTIFY_SVC_`."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from notify_svc import SCHEMA
from servicekit.settings import BaseServiceSettings

DEFAULT_RETRY_SCHEDULE = [5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0]


class Settings(BaseServiceSettings):
    model_config = SettingsConfigDict(env_prefix="NOTIFY_SVC_", extra="ignore")

    service_name: str = "notify-svc"
    db_schema: str = SCHEMA

    # --- webhooks (docs/webhooks.md) ---------------------------------------------------
    webhook_encryption_key: SecretStr | None = Field(
        default=None,
        description="Fernet key (urlsafe base64 of 32 bytes) that encrypts signing secrets at "
        "rest. Unset: a fixed development key, refused when environment is 'production'.",
    )
    webhook_allowed_networks: list[str] = Field(
        default_factory=list,
        description="CIDRs endpoints may resolve to although they are private or loopback, "
        'e.g. ["127.0.0.0/8", "::1/128"] for the local stack and tests. Empty in production.',
    )
    webhook_require_https: bool = Field(
        default=False, description="Refuse endpoint URLs that are not https://."
    )
    webhook_timeout_seconds: float = Field(default=15.0, gt=0, le=120)
    webhook_retry_schedule_seconds: list[float] = Field(
        default_factory=lambda: list(DEFAULT_RETRY_SCHEDULE),
        description="Delay before each retry (+-20 % jitter); after the last one a delivery is "
        "dead. Tests and the local stack use seconds.",
    )
    webhook_retry_after_cap_seconds: float = Field(
        default=3600.0, description="Longest Retry-After (429, 503) honoured."
    )
    webhook_rotation_grace_seconds: int = Field(
        default=24 * 3600, description="How long a rotated-out secret keeps signing."
    )
    webhook_failure_window_seconds: float = Field(
        default=5 * 24 * 3600.0,
        description="An endpoint failing this long without a success is disabled.",
    )
    webhook_retention_days: float = Field(
        default=30.0, description="Attempts and succeeded deliveries older than this are pruned."
    )
    webhook_claim_seconds: float = Field(
        default=0.0,
        description="How long a claimed delivery stays claimed; 0: the attempt timeout + 30 s.",
    )
    webhook_max_in_flight_per_endpoint: int = Field(
        default=16,
        ge=1,
        description="Attempts to one endpoint at once (being made or queued), across all "
        "workers: what protects a subscriber from a burst, and what a hanging endpoint can hold "
        "(in-flight / batch size worker threads). An endpoint answering in 200 ms gets at most "
        "16 / 0.2 s = 80 deliveries/s; `rate_limit_per_second` paces one further.",
    )
    webhook_max_in_flight_while_failing: int = Field(
        default=1,
        ge=1,
        description="The in-flight cap of an endpoint that is failing (no attempt has succeeded "
        "since its last one failed): a probe at a time, so a down or hanging endpoint holds one "
        "attempt, not the full cap, until an attempt succeeds and the full cap comes back. "
        "Never more than webhook_max_in_flight_per_endpoint.",
    )
    webhook_batch_size: int = Field(
        default=8,
        ge=1,
        le=100,
        description="Deliveries of one endpoint a worker claims in one statement, sends at once "
        "and records in one statement (within the in-flight cap). Half the in-flight cap: two "
        "batches of a busy endpoint overlap, one on the wire while the other is recorded.",
    )
    webhook_redrive_interval_seconds: float = Field(
        default=5.0, description="Beat's period for re-enqueueing due and expired deliveries."
    )
    webhook_requeue_after_seconds: float = Field(
        default=10.0,
        description="A due delivery enqueued this long ago and still not claimed is enqueued "
        "again (its Celery message may be lost).",
    )
    webhook_dispatch_poll_seconds: float = Field(
        default=1.0, description="The events process's fallback poll for due deliveries."
    )
    webhook_dispatch_min_interval_seconds: float = Field(
        default=0.02,
        ge=0,
        description="Shortest time between two dispatch rounds (wake-ups in between wait).",
    )
    # --- e-mail notifications and reminders (docs/notifications.md) --------------------
    smtp_host: str = Field(default="127.0.0.1", description="SMTP server (the relay to use).")
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_starttls: bool = Field(
        default=False, description="Upgrade the connection with STARTTLS before sending."
    )
    smtp_tls: bool = Field(default=False, description="Implicit TLS (port 465 style).")
    smtp_username: str | None = Field(default=None, description="Log in when set.")
    smtp_password: SecretStr | None = None
    smtp_timeout_seconds: float = Field(default=15.0, gt=0, le=120)
    mail_from: str = Field(
        default="Blueprint <notifications@blueprint.local>", description="The From header."
    )
    public_base_url: str = Field(
        default="http://localhost:8080",
        description="The gateway as users reach it: links in mails start here.",
    )
    notification_max_attempts: int = Field(
        default=3, ge=1, le=20, description="Attempts of a notification before it is failed."
    )
    notification_retry_schedule_seconds: list[float] = Field(
        default_factory=lambda: [30.0, 300.0],
        description="Delay before the 2nd, 3rd... attempt (+-20 % jitter); the last value "
        "repeats when there are more attempts than values.",
    )
    notification_claim_seconds: float = Field(
        default=120.0, description="How long a claimed notification stays claimed."
    )
    reminder_interval_seconds: float = Field(
        default=60.0, gt=0, description="Beat's period for the deadline reminder scan."
    )
    reminder_overdue_window_hours: float = Field(
        default=24.0,
        gt=0,
        description="Tasks that became overdue within this window get their overdue notice "
        "(older ones were noticed already, or before notify-svc ran).",
    )
    task_client_timeout_seconds: float = Field(default=5.0, gt=0)
    task_client_attempts: int = Field(default=3, ge=1, le=10)
    task_client_backoff_seconds: float = Field(default=0.2, ge=0)
    celery_broker_url: str | None = Field(
        default=None, description="Celery's broker; unset: redis_url."
    )
    celery_concurrency: int = Field(
        default=32, ge=1, description="Worker threads (they wait on one event loop)."
    )
    celery_metrics_port: int | None = Field(
        default=None, description="Port of the Celery worker's /metrics; unset: none."
    )

    @property
    def claim_seconds(self) -> float:
        return self.webhook_claim_seconds or self.webhook_timeout_seconds + 30.0

    @property
    def broker_url(self) -> str:
        return self.celery_broker_url or self.redis_url
