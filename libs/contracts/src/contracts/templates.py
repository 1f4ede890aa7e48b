"""Events template-svc publishes about templates and their versions."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

TEMPLATE_VERSION_PUBLISHED = "template.version.published"


class TemplateVersionPublishedV1(BaseModel):
    """A template version was published: its graph is frozen and projects may start from it.

    `checksum` is the sha256 (hex) of the version's canonical graph JSON, the same value the
    internal read of that version returns.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    event_type: ClassVar[str] = TEMPLATE_VERSION_PUBLISHED
    schema_version: ClassVar[int] = 1

    template_id: uuid.UUID
    org_id: uuid.UUID
    key: str = Field(description="the template's key (slug, unique in the org)")
    version: int = Field(ge=1)
    checksum: str = Field(pattern=r"^[0-9a-f]{64}$")
    published_at: datetime
    published_by: uuid.UUID


__all__ = ["TEMPLATE_VERSION_PUBLISHED", "TemplateVersionPublishedV1"]
