"""Imports every model module so the metadata Alembic compares against is complete."""

from notify_svc.db import Base
from notify_svc.notifications import models as notification_models  # noqa: F401
from notify_svc.webhooks import models as webhook_models  # noqa: F401

metadata = Base.metadata
