"""Alembic environment of template-svc: its own schema and version table only."""

from servicekit.migrations import run_env
from template_svc import SCHEMA
from template_svc.models_registry import metadata

run_env(metadata, schema=SCHEMA)
