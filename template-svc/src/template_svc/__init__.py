"""template-svc: Versioned process templates: task graphs with dependencies and QC checkpoints."""

from pathlib import Path

SCHEMA = "template"
ROLE = "template_svc"
# The service's folder (alembic.ini, migrations/): how tools and tests find its migrations.
SERVICE_DIR = Path(__file__).resolve().parents[2]
