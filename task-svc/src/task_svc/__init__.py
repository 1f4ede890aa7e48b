"""task-svc: Projects pinned to a template version, deliverables with serial numbers, and the task state machine."""

from pathlib import Path

SCHEMA = "task"
ROLE = "task_svc"
# The service's folder (alembic.ini, migrations/): how tools and tests find its migrations.
SERVICE_DIR = Path(__file__).resolve().parents[2]
