"""template-svc settings: env vars prefixed `TEMPLATE_SVC_`."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from servicekit.settings import BaseServiceSettings
from template_svc import SCHEMA


class Settings(BaseServiceSettings):
    model_config = SettingsConfigDict(env_prefix="TEMPLATE_SVC_", extra="ignore")

    service_name: str = "template-svc"
    db_schema: str = SCHEMA
