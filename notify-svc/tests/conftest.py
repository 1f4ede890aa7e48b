"""Fixtures of notify-svc's tests: its migrated schema, app and client (servicekit plugin).

The settings allow loopback endpoints (the tests' receivers listen on 127.0.0.1) and retry
webhooks and notifications on schedules of fractions of a second.
"""

from functools import partial

from notify_svc import ROLE, SCHEMA, SERVICE_DIR
from notify_svc.main import create_app
from notify_svc.settings import Settings
from servicekit.testing.plugin import ServiceSpec, install_service_fixtures

SPEC = ServiceSpec(role=ROLE, schema=SCHEMA, service_dir=SERVICE_DIR)
LOOPBACK = ["127.0.0.0/8", "::1/128"]

install_service_fixtures(
    globals(),
    spec=SPEC,
    settings_cls=partial(
        Settings,
        webhook_allowed_networks=LOOPBACK,
        webhook_retry_schedule_seconds=[0.2, 0.2],
        webhook_timeout_seconds=2.0,
        notification_retry_schedule_seconds=[0.1, 0.1],
        smtp_timeout_seconds=5.0,
    ),
    create_app=create_app,
)
