"""qc-svc settings: env vars prefixed `QC_SVC_`."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from qc_svc import SCHEMA
from servicekit.settings import BaseServiceSettings


class Settings(BaseServiceSettings):
    model_config = SettingsConfigDict(env_prefix="QC_SVC_", extra="ignore")

    service_name: str = "qc-svc"
    db_schema: str = SCHEMA
