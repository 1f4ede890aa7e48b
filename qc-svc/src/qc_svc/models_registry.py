"""Imports every model module so the metadata Alembic compares against is complete."""

from qc_svc.db import Base
from qc_svc.inspections import models as inspection_models

metadata = Base.metadata

__all__ = ["inspection_models", "metadata"]
