"""Alembic environment of qc-svc: its own schema and version table only."""

from servicekit.migrations import run_env
from qc_svc import SCHEMA
from qc_svc.models_registry import metadata

run_env(metadata, schema=SCHEMA)
