"""notify-svc settings: env vars prefixed `NOTIFY_SVC_`."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from notify_svc import SCHEMA
from servicekit.settings import BaseServiceSettings


class Settings(BaseServiceSettings):
    model_config = SettingsConfigDict(env_prefix="NOTIFY_SVC_", extra="ignore")

    service_name: str = "notify-svc"
    db_schema: str = SCHEMA
