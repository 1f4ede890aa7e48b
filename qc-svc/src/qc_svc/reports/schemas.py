"""Bodies of the quality report."""

from __future__ import annotations

import uuid
from datetime import date

from pydantic import BaseModel, Field


class YieldMetrics(BaseModel):
    inspections: int = Field(description="decided inspections in the range")
    passed: int
    failed: int
    tasks: int = Field(description="distinct tasks those inspections belong to")
    first_round_inspections: int = Field(description="round-1 inspections decided in the range")
    first_pass_accepted: int = Field(description="of those, accepted")
    first_pass_yield: float | None = Field(
        description="first_pass_accepted / first_round_inspections (null when there were none)"
    )
    rework_rate: float | None = Field(
        description="failed / inspections: the share of decisions that sent work back"
    )
    rework_rounds: int = Field(description="inspections of round 2 or later")
    max_round: int | None
    avg_rounds_to_pass: float | None = Field(description="mean round of the accepted inspections")
    defects: int
    critical_defects: int


class ProjectYield(YieldMetrics):
    project_id: uuid.UUID


class TemplateVersionYield(YieldMetrics):
    template_id: uuid.UUID | None
    template_version: int | None


class NodeYield(YieldMetrics):
    template_id: uuid.UUID | None
    node_key: str


class AssigneeYield(YieldMetrics):
    assignee_id: uuid.UUID | None


class DefectCodeRow(BaseModel):
    code: str
    defects: int
    critical: int
    major: int
    minor: int
    share: float
    cumulative_share: float


class DefectSeverityRow(BaseModel):
    severity: str
    defects: int
    share: float


class ReportScope(BaseModel):
    date_from: date = Field(description="first day (UTC), inclusive")
    date_to: date = Field(description="last day (UTC), inclusive")
    project_id: uuid.UUID | None
    template_id: uuid.UUID | None


class QualityReport(BaseModel):
    scope: ReportScope
    overall: YieldMetrics
    by_project: list[ProjectYield]
    by_template_version: list[TemplateVersionYield]
    by_node: list[NodeYield]
    by_assignee: list[AssigneeYield]
    defects_by_code: list[DefectCodeRow] = Field(description="Pareto: most frequent code first")
    defects_by_severity: list[DefectSeverityRow]
