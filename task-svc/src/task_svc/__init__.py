"""task-svc: projects pinned to a template version, deliverables with serials, the task FSM."""

from pathlib import Path

SCHEMA = "task"
ROLE = "task_svc"
# The service's folder (alembic.ini, migrations/): how tools and tests find its migrations.
SERVICE_DIR = Path(__file__).resolve().parents[2]
