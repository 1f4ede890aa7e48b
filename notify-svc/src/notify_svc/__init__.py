"""notify-svc: Webhook subscriptions and signed deliveries, e-mail and reminders."""

from pathlib import Path

SCHEMA = "notify"
ROLE = "notify_svc"
# The service's folder (alembic.ini, migrations/): how tools and tests find its migrations.
SERVICE_DIR = Path(__file__).resolve().parents[2]
