"""qc-svc: Inspections, the reject-rework loop, and quality reports."""

from pathlib import Path

SCHEMA = "qc"
ROLE = "qc_svc"
# The service's folder (alembic.ini, migrations/): how tools and tests find its migrations.
SERVICE_DIR = Path(__file__).resolve().parents[2]
