"""Alembic environment of qc-svc: its own schema and version table only."""

from qc_svc import SCHEMA
from qc_svc.models_registry import metadata
from servicekit.migrations import run_env

run_env(metadata, schema=SCHEMA)
