"""Fixtures of task-svc's tests: its migrated schema, app and client (servicekit plugin)."""

from servicekit.testing.plugin import ServiceSpec, install_service_fixtures
from task_svc import ROLE, SCHEMA, SERVICE_DIR
from task_svc.main import create_app
from task_svc.settings import Settings

SPEC = ServiceSpec(role=ROLE, schema=SCHEMA, service_dir=SERVICE_DIR)

install_service_fixtures(globals(), spec=SPEC, settings_cls=Settings, create_app=create_app)
