"""Alembic environment of notify-svc: its own schema and version table only."""

from notify_svc import SCHEMA
from notify_svc.models_registry import metadata
from servicekit.migrations import run_env

run_env(metadata, schema=SCHEMA)
