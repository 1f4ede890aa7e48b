"""Imports every model module so the metadata Alembic compares against is complete."""

from template_svc import idempotency
from template_svc.db import Base
from template_svc.templates import models as template_models
from template_svc.versions import models as version_models

metadata = Base.metadata

__all__ = ["idempotency", "metadata", "template_models", "version_models"]
