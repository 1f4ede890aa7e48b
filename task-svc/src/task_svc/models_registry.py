"""Imports every model module so the metadata Alembic compares against is complete."""

from task_svc.db import Base
from task_svc.deliverables import models as deliverable_models
from task_svc.project_migrations import models as migration_models
from task_svc.projects import models as project_models
from task_svc.tasks import models as task_models

metadata = Base.metadata

__all__ = ["deliverable_models", "metadata", "migration_models", "project_models", "task_models"]
