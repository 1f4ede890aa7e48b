"""Imports every model module so the metadata Alembic compares against is complete."""

from template_svc.db import Base

metadata = Base.metadata
