"""Alembic environment of task-svc: its own schema and version table only."""

from servicekit.migrations import run_env
from task_svc import SCHEMA
from task_svc.models_registry import metadata

run_env(metadata, schema=SCHEMA)
