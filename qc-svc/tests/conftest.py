"""Fixtures of qc-svc's tests: its migrated schema, app and client (servicekit plugin)."""

from qc_svc import ROLE, SCHEMA, SERVICE_DIR
from qc_svc.main import create_app
from qc_svc.settings import Settings
from servicekit.testing.plugin import ServiceSpec, install_service_fixtures

SPEC = ServiceSpec(role=ROLE, schema=SCHEMA, service_dir=SERVICE_DIR)

install_service_fixtures(globals(), spec=SPEC, settings_cls=Settings, create_app=create_app)
