"""Who is calling: the `Principal` a verified token stands for, and the role names."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from servicekit.errors import Forbidden

ROLES = ("admin", "planner", "operator", "inspector", "approver", "viewer")
SERVICE_ROLE = "service"


@dataclass(frozen=True)
class Principal:
    """Who is calling: a user of one org, or another service."""

    sub: str
    org_id: uuid.UUID | None
    roles: frozenset[str]
    claims: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def is_service(self) -> bool:
        return SERVICE_ROLE in self.roles

    @property
    def user_id(self) -> uuid.UUID:
        return uuid.UUID(self.sub)

    @property
    def org(self) -> uuid.UUID:
        if self.org_id is None:
            raise Forbidden("this token carries no org_id", code="ORG_REQUIRED")
        return self.org_id

    def has_any(self, roles: Iterable[str]) -> bool:
        return bool(self.roles.intersection(roles))
