"""task-svc settings: env vars prefixed `TASK_SVC_`."""

from __future__ import annotations

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from servicekit.settings import BaseServiceSettings
from task_svc import SCHEMA


class Settings(BaseServiceSettings):
    model_config = SettingsConfigDict(env_prefix="TASK_SVC_", extra="ignore")

    service_name: str = "task-svc"
    db_schema: str = SCHEMA

    # Reads of template-svc when a project starts.
    template_client_timeout_seconds: float = 5.0
    template_client_attempts: int = Field(default=3, ge=1, le=10)
    template_client_backoff_seconds: float = Field(default=0.2, ge=0)

    # Serial numbers of deliverables: used when an org's counter is first created.
    serial_prefix: str = Field(default="DLV", min_length=1, max_length=16)
    serial_format: str = "{prefix}-{n:06d}"

    # Size limits of one project.
    max_deliverables: int = Field(default=200, ge=1)
    max_tasks_per_project: int = Field(default=50_000, ge=1)

    # The live event stream (GET /api/v1/projects/{id}/stream). See docs/stream.md.
    stream_sources: list[str] = Field(
        default=["task-svc", "qc-svc"],
        min_length=1,
        description="Producers whose event streams feed the live stream, in cursor order.",
    )
    stream_heartbeat_seconds: float = Field(default=15.0, gt=0)
    stream_queue_size: int = Field(
        default=1000, ge=1, description="Events queued for one client before it is dropped."
    )
    stream_read_block_ms: int = Field(default=5000, ge=10)
    stream_ticket_ttl_seconds: int = Field(default=60, ge=1, le=3600)

    # Project migrations (docs/migrations.md).
    migration_plan_ttl_seconds: int = Field(
        default=3600, ge=1, description="how long a migration plan can be applied"
    )
    migration_jobs_in_process: bool = Field(
        default=True, description="run batch migration jobs in the API processes"
    )
    migration_job_lease_seconds: float = Field(
        default=30.0,
        gt=0,
        description="a worker's hold on a job: a dead worker's job resumes once it runs out",
    )
    migration_job_poll_seconds: float = Field(default=2.0, gt=0)

    @field_validator("serial_format")
    @classmethod
    def _format_works(cls, value: str) -> str:
        try:
            sample = value.format(prefix="X", n=1)
        except (KeyError, IndexError, ValueError, AttributeError) as exc:
            raise ValueError(f"serial_format must use only {{prefix}} and {{n}}: {exc}") from exc
        if sample == value.format(prefix="X", n=2):
            raise ValueError("serial_format must contain {n}")
        return value
