"""Fixtures of qc-svc's tests: its migrated schema, app and client (servicekit plugin), and a
factory of inspections created the way the `task.submitted_for_qc` handler creates them."""

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from qc_svc import ROLE, SCHEMA, SERVICE_DIR
from qc_svc.inspections import intake
from qc_svc.inspections.models import Inspection
from qc_svc.main import create_app
from qc_svc.settings import Settings
from servicekit.testing.plugin import DEFAULT_ORG, ServiceSpec, install_service_fixtures

SPEC = ServiceSpec(role=ROLE, schema=SCHEMA, service_dir=SERVICE_DIR)

install_service_fixtures(globals(), spec=SPEC, settings_cls=Settings, create_app=create_app)

CHECKLIST = [
    {"code": "WELD-01", "text": "Seams are continuous", "required": True},
    {"code": "WELD-02", "text": "No porosity", "required": True},
    {"code": "PAINT-01", "text": "Paint is even", "required": False},
]

Submit = Callable[..., Awaitable[Inspection]]


def submission(**overrides: Any) -> dict[str, Any]:
    """The fields of a task.submitted_for_qc event, with fresh ids unless overridden."""
    values: dict[str, Any] = {
        "org_id": DEFAULT_ORG,
        "task_id": uuid.uuid4(),
        "project_id": uuid.uuid4(),
        "deliverable_id": uuid.uuid4(),
        "node_key": "weld-frame",
        "title": "Weld the frame",
        "qc_checklist": CHECKLIST,
        "round": 1,
        "assignee_id": uuid.uuid4(),
        "template_id": uuid.uuid4(),
        "template_version": 1,
    }
    values.update(overrides)
    return values


async def submit_with(session: AsyncSession, **overrides: Any) -> Inspection:
    inspection, _ = await intake.create_inspection_from_submission(
        session, **submission(**overrides)
    )
    await session.flush()
    return inspection


@pytest.fixture
def make_submission() -> Callable[..., dict[str, Any]]:
    """The `submission(**overrides)` helper: fields of a task.submitted_for_qc event."""
    return submission


@pytest.fixture
def checklist() -> list[dict[str, Any]]:
    return [dict(i) for i in CHECKLIST]


@pytest.fixture
def submit(session: AsyncSession) -> Submit:
    """`await submit(round=2, task_id=...)`: a pending inspection in the test's transaction."""

    async def make(**overrides: Any) -> Inspection:
        return await submit_with(session, **overrides)

    return make
