"""notify-svc settings: env vars prefixed `NOTIFY_SVC_`."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from servicekit.settings import BaseServiceSettings
from notify_svc import SCHEMA


class Settings(BaseServiceSettings):
    model_config = SettingsConfigDict(env_prefix="NOTIFY_SVC_", extra="ignore")

    service_name: str = "notify-svc"
    db_schema: str = SCHEMA
