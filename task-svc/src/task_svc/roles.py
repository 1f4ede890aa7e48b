"""Who may call task-svc's routes: one `Annotated` dependency per role set, each giving a
`Principal` that routes pass on to the services as `principal=`.

    CurrentUser    any user of an org (reads; transitions, whose rights the FSM table decides
                   per action and per assignee)
    Planner        starts projects and holds, resumes or cancels them
    Approver       signs deliverables off
    ServiceCaller  another service, on `/internal/...` routes

Admin passes every role check (servicekit's `require_roles`).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from servicekit.auth import CurrentUser, Principal, ServiceCaller, require_roles

Planner = Annotated[Principal, Depends(require_roles("planner"))]
Approver = Annotated[Principal, Depends(require_roles("approver"))]

__all__ = ["Approver", "CurrentUser", "Planner", "ServiceCaller"]
