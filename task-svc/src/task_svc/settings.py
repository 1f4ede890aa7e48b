"""task-svc settings: env vars prefixed `TASK_SVC_`."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from servicekit.settings import BaseServiceSettings
from task_svc import SCHEMA


class Settings(BaseServiceSettings):
    model_config = SettingsConfigDict(env_prefix="TASK_SVC_", extra="ignore")

    service_name: str = "task-svc"
    db_schema: str = SCHEMA
