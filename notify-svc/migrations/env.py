"""Alembic environment of notify-svc: its own schema and version table only."""

from servicekit.migrations import run_env
from notify_svc import SCHEMA
from notify_svc.models_registry import metadata

run_env(metadata, schema=SCHEMA)
