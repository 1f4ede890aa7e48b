"""Who may call qc-svc's routes: the role aliases its routers declare parameters with."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from servicekit.auth import Principal, require_roles

READER_ROLES = ("inspector", "planner", "viewer")

# An inspector (admin passes too): claims inspections and records results, defects, decisions.
Inspector = Annotated[Principal, Depends(require_roles("inspector"))]
# Anyone who reads inspections and reports.
QcReader = Annotated[Principal, Depends(require_roles(*READER_ROLES))]
