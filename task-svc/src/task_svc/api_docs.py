"""task-svc's API documentation table: operationIds, named request examples, problem codes.

The transition examples are built from the FSM table, one per user action, so the examples
selector of Swagger UI cannot drift from the actions the service accepts.
"""

from __future__ import annotations

from typing import Any

from servicekit.openapi_docs import Example, OperationDoc, ProblemExample, ServiceDocs
from task_svc.project_migrations.schemas import RULES_EXAMPLE
from task_svc.projects.schemas import PROJECT_CREATE_EXAMPLE
from task_svc.tasks.fsm import TRANSITIONS, USER_ACTIONS
from task_svc.tasks.transition_schemas import EXAMPLE_ROW_VERSION

TASK_ID = "0b7c1a52-6f0e-4d43-9d0c-2f6d6c1b8e11"
USER_ID = "7d1f3c8e-2a4b-4c6d-8e9f-0a1b2c3d4e5f"
PLAN_ID = "5a0c7e3e-1b7d-4a57-9f2c-6f0d3e2a1b4c"


def transition_examples() -> dict[str, Example]:
    """One named example per user action of the state machine, from its row of the table.

    No `client_event_id`: a fixed key copied from an example would make the same action on the
    same task a second time (assign after unassign) replay the first answer instead of applying.
    The field and the Idempotency-Key header describe it, with an example of their own."""
    return {
        str(action): Example(
            summary=f"{action}: {TRANSITIONS[action].summary}",
            value={
                "action": str(action),
                "payload": dict(TRANSITIONS[action].example),
                "expected_row_version": EXAMPLE_ROW_VERSION,
            },
        )
        for action in USER_ACTIONS
    }


_TRANSITION_RESULT: dict[str, Any] = {
    "task_id": TASK_ID,
    "action": "start",
    "from_status": "ready",
    "to_status": "in_progress",
    "row_version": EXAMPLE_ROW_VERSION + 1,
    "task": {
        "id": TASK_ID,
        "project_id": "2c4e6a8b-0d1f-4a3b-9c5d-7e9f1a3b5c7d",
        "deliverable_id": "8e6c4a2b-0f1d-4e3c-8b5a-9d7f1e3c5a7b",
        "node_key": "weld-frame",
        "title": "Weld the frame",
        "status": "in_progress",
        "assigned_to": USER_ID,
        "assigned_at": "2026-03-02T08:12:00Z",
        "started_at": "2026-03-02T08:30:00Z",
        "completed_at": None,
        "open_blockers": 0,
        "qc_required": True,
        "is_milestone": False,
        "row_version": EXAMPLE_ROW_VERSION + 1,
        "updated_at": "2026-03-02T08:30:00Z",
        "allowed_actions": ["pause", "complete", "cancel", "unassign"],
    },
}

_DELIVERABLE_ID = "8e6c4a2b-0f1d-4e3c-8b5a-9d7f1e3c5a7b"
# The worked example of docs/migrations.md: a QC step added between cut (done) and weld (in
# progress), the unstarted painting removed; weld is kept where it is by rule.
_PLAN_RESULT: dict[str, Any] = {
    "id": "5a0c7e3e-1b7d-4a57-9f2c-6f0d3e2a1b4c",
    "project_id": "2c4e6a8b-0d1f-4a3b-9c5d-7e9f1a3b5c7d",
    "template_id": "0b6f8a8e-5d7c-4f1e-9a63-2c1d0e9b7a10",
    "from_version": 1,
    "to_version": 2,
    "rules": {**RULES_EXAMPLE, "rename": {}},
    "project_row_version": 4,
    "created_at": "2026-12-03T08:00:00Z",
    "created_by": USER_ID,
    "expires_at": "2026-12-03T09:00:00Z",
    "state": "open",
    "migration_id": None,
    "changes_anything": True,
    "counts": {
        "tasks_added": 1,
        "tasks_cancelled": 1,
        "tasks_updated": 0,
        "tasks_kept_as_orphans": 0,
        "status_changes": 2,
    },
    "graph": {
        "nodes_added": ["check-cut"],
        "nodes_removed": ["paint"],
        "nodes_changed": {},
        "edges_added": [
            {"blocker": "check-cut", "dependent": "weld"},
            {"blocker": "cut", "dependent": "check-cut"},
        ],
        "edges_removed": [
            {"blocker": "cut", "dependent": "weld"},
            {"blocker": "weld", "dependent": "paint"},
        ],
        "renamed": {},
    },
    "deliverables": [
        {
            "deliverable_id": _DELIVERABLE_ID,
            "name": "#1",
            "serial": "DLV-000042",
            "status": "in_progress",
            "status_after": "in_progress",
            "untouched": False,
            "kept": [],
            "added": [
                {
                    "node_key": "check-cut",
                    "status": "ready",
                    "open_blockers": 0,
                    "reason": "node 'check-cut' is added",
                }
            ],
            "removed": [
                {"task_id": TASK_ID, "node_key": "paint", "status": "blocked", "outcome": "cancel"}
            ],
            "edges_added": [
                {"blocker": "check-cut", "dependent": "weld"},
                {"blocker": "cut", "dependent": "check-cut"},
            ],
            "edges_removed": [
                {"blocker": "cut", "dependent": "weld"},
                {"blocker": "weld", "dependent": "paint"},
            ],
            "open_blockers": [],
            "status_changes": [
                {
                    "task_id": TASK_ID,
                    "node_key": "paint",
                    "from": "blocked",
                    "to": "cancelled",
                    "reason": "node 'paint' is removed and the task was not started",
                },
                {
                    "task_id": None,
                    "node_key": "check-cut",
                    "from": None,
                    "to": "ready",
                    "reason": "node 'check-cut' is added",
                },
            ],
        }
    ],
    "blocking_conflicts": [],
}

_JOB_RESULT: dict[str, Any] = {
    "id": "9d2c4e6a-8b0d-4f1a-9c3e-5a7b9d1f3e5c",
    "template_id": "0b6f8a8e-5d7c-4f1e-9a63-2c1d0e9b7a10",
    "to_version": 2,
    "from_versions": [1],
    "rules": {**RULES_EXAMPLE, "rename": {}},
    "dry_run": False,
    "status": "running",
    "total": 2,
    "processed": 1,
    "counts": {"migrated": 1, "pending": 1},
    "created_by": USER_ID,
    "created_at": "2026-12-03T08:00:00Z",
    "updated_at": "2026-12-03T08:00:01Z",
    "finished_at": None,
    "items": [
        {
            "position": 1,
            "project_id": "2c4e6a8b-0d1f-4a3b-9c5d-7e9f1a3b5c7d",
            "from_version": 1,
            "status": "migrated",
            "detail": {"migration_id": "4f1a2b3c-5d6e-4f70-8a9b-0c1d2e3f4a5b"},
            "finished_at": "2026-12-03T08:00:01Z",
        },
        {
            "position": 2,
            "project_id": "6e8a0c2e-4a6c-4e8a-8c0e-2a4c6e8a0c2e",
            "from_version": 1,
            "status": "pending",
            "detail": {},
            "finished_at": None,
        },
    ],
}

_PROJECT_404 = {404: ["PROJECT_NOT_FOUND"]}
_PROJECT_STATUS = {404: ["PROJECT_NOT_FOUND"], 409: ["PROJECT_STATUS_CONFLICT"]}
_TASK_404 = {404: ["TASK_NOT_FOUND"]}

OPERATIONS: dict[tuple[str, str], OperationDoc] = {
    ("GET", "/api/v1/deliverables/{deliverable_id}"): OperationDoc(
        "getDeliverable", errors={404: ["DELIVERABLE_NOT_FOUND"]}
    ),
    ("POST", "/api/v1/deliverables/{deliverable_id}/signoff"): OperationDoc(
        "signOffDeliverable",
        requests={
            "approved": Example(
                "approved: every task is done, the deliverable is signed off",
                {"decision": "approved", "comment": "all good", "expected_row_version": 2},
            ),
            "rejected": Example(
                "rejected: reopen the named tasks for rework",
                {
                    "decision": "rejected",
                    "comment": "scratch on the left panel",
                    "reopen_task_ids": [TASK_ID],
                    "expected_row_version": 2,
                },
            ),
        },
        errors={
            404: ["DELIVERABLE_NOT_FOUND"],
            409: ["DELIVERABLE_NOT_READY"],
            422: ["PAYLOAD_INVALID"],
        },
    ),
    ("POST", "/api/v1/projects"): OperationDoc(
        "createProject",
        requests={
            "count": Example("a number of deliverables, named #1, #2, ...", PROJECT_CREATE_EXAMPLE),
            "named": Example(
                "named deliverables, in order",
                {**PROJECT_CREATE_EXAMPLE, "deliverables": ["Left cabinet", "Right cabinet"]},
            ),
        },
        errors={
            422: [
                "TEMPLATE_NOT_FOUND",
                "TEMPLATE_VERSION_NOT_PUBLISHED",
                "DUE_BEFORE_START",
                "TOO_MANY_TASKS",
            ]
        },
    ),
    ("GET", "/api/v1/projects"): OperationDoc("listProjects", errors={400: ["STATUS_INVALID"]}),
    ("GET", "/api/v1/projects/{project_id}"): OperationDoc("getProject", errors=_PROJECT_404),
    ("POST", "/api/v1/projects/{project_id}/cancel"): OperationDoc(
        "cancelProject", errors=_PROJECT_STATUS
    ),
    ("POST", "/api/v1/projects/{project_id}/hold"): OperationDoc(
        "holdProject", errors=_PROJECT_STATUS
    ),
    ("POST", "/api/v1/projects/{project_id}/resume"): OperationDoc(
        "resumeProject", errors=_PROJECT_STATUS
    ),
    ("GET", "/api/v1/projects/{project_id}/stream"): OperationDoc(
        "streamProjectEvents",
        errors={
            401: ["STREAM_TICKET_INVALID"],
            404: ["PROJECT_NOT_FOUND"],
            422: ["STREAM_CURSOR_INVALID"],
        },
    ),
    ("POST", "/api/v1/projects/{project_id}/stream-tickets"): OperationDoc(
        "createStreamTicket", errors=_PROJECT_404
    ),
    ("GET", "/api/v1/projects/{project_id}/dashboard"): OperationDoc(
        "getProjectDashboard", errors=_PROJECT_404
    ),
    ("GET", "/api/v1/projects/{project_id}/graph"): OperationDoc(
        "getProjectGraph", errors=_PROJECT_404
    ),
    ("POST", "/api/v1/projects/{project_id}/migration-plans"): OperationDoc(
        "createMigrationPlan",
        requests={
            "no_rules": Example(
                "no rules: every conflict is reported and blocks the apply", {"to_version": 2}
            ),
            "with_rules": Example(
                "rules that settle conflicts, and a key renamed",
                {"to_version": 2, "rules": RULES_EXAMPLE},
            ),
        },
        errors={
            404: ["PROJECT_NOT_FOUND"],
            409: ["PROJECT_STATUS_CONFLICT"],
            422: [
                "TEMPLATE_VERSION_NOT_FOUND",
                "TEMPLATE_VERSION_NOT_PUBLISHED",
                "RENAME_SOURCE_UNKNOWN",
                "RENAME_TARGET_UNKNOWN",
                "RENAME_TARGET_TAKEN",
            ],
        },
        responses={201: _PLAN_RESULT},
    ),
    ("GET", "/api/v1/projects/{project_id}/migration-plans/{plan_id}"): OperationDoc(
        "getMigrationPlan",
        errors={404: ["MIGRATION_PLAN_NOT_FOUND"]},
        responses={200: _PLAN_RESULT},
    ),
    ("POST", "/api/v1/projects/{project_id}/migrations"): OperationDoc(
        "applyMigrationPlan",
        requests={
            "apply": Example(
                "apply a plan, naming the project's row_version it was made from",
                {"plan_id": PLAN_ID, "expected_row_version": 4},
            ),
        },
        errors={
            404: ["PROJECT_NOT_FOUND"],
            409: [
                "MIGRATION_PLAN_STALE",
                "MIGRATION_PLAN_EXPIRED",
                "MIGRATION_PLAN_APPLIED",
                "MIGRATION_PLAN_HAS_CONFLICTS",
                "PROJECT_STATUS_CONFLICT",
                "IDEMPOTENCY_KEY_REUSED",
            ],
            422: ["MIGRATION_PLAN_NOT_FOUND", "MIGRATION_PLAN_OF_ANOTHER_PROJECT"],
        },
    ),
    ("GET", "/api/v1/projects/{project_id}/migrations"): OperationDoc(
        "listProjectMigrations", errors=_PROJECT_404
    ),
    ("POST", "/api/v1/templates/{template_id}/versions/{version}/migrations"): OperationDoc(
        "createMigrationJob",
        requests={
            "dry_run": Example(
                "plan every project on versions 1 and 2, change none",
                {"from_versions": [1, 2], "rules": RULES_EXAMPLE, "dry_run": True},
            ),
            "migrate": Example(
                "move every active project on version 1",
                {"from_versions": [1], "rules": {"blocker_added_to_started": "keep"}},
            ),
        },
        errors={
            404: ["TEMPLATE_VERSION_NOT_FOUND"],
            422: ["FROM_VERSION_IS_TARGET", "TEMPLATE_VERSION_NOT_PUBLISHED"],
        },
        responses={202: _JOB_RESULT},
    ),
    ("GET", "/api/v1/templates/{template_id}/versions/{version}/migrations/{job_id}"): OperationDoc(
        "getMigrationJob", errors={404: ["MIGRATION_JOB_NOT_FOUND"]}, responses={200: _JOB_RESULT}
    ),
    ("GET", "/api/v1/tasks"): OperationDoc(
        "listTasks", errors={400: ["STATUS_INVALID", "ASSIGNEE_INVALID", "SORT_INVALID"]}
    ),
    ("GET", "/api/v1/tasks/fsm"): OperationDoc("getTaskStateMachine"),
    ("POST", "/api/v1/tasks/transitions:bulk"): OperationDoc("applyTaskTransitionsBulk"),
    ("GET", "/api/v1/tasks/{task_id}"): OperationDoc("getTask", errors=_TASK_404),
    ("GET", "/api/v1/tasks/{task_id}/events"): OperationDoc("listTaskEvents", errors=_TASK_404),
    ("POST", "/api/v1/tasks/{task_id}/transitions"): OperationDoc(
        "applyTaskTransition",
        requests=transition_examples(),
        responses={200: _TRANSITION_RESULT},
        errors={
            403: ["ACTION_FORBIDDEN", "SYSTEM_ACTION"],
            404: ["TASK_NOT_FOUND"],
            409: [
                "ACTION_NOT_ALLOWED",
                "TASK_BLOCKED",
                "PROJECT_NOT_ACTIVE",
                "DELIVERABLE_SIGNED_OFF",
                "IDEMPOTENCY_KEY_REUSED",
            ],
            422: ["PAYLOAD_INVALID", "ACTION_UNKNOWN"],
        },
    ),
}


def _p(status: int, title: str, detail: str, **extra: Any) -> ProblemExample:
    return ProblemExample((status,), title, detail, extra)


PROBLEMS: dict[str, ProblemExample] = {
    "DELIVERABLE_NOT_FOUND": _p(404, "Not found", "deliverable 8e6c4a2b-... does not exist"),
    "DELIVERABLE_NOT_READY": _p(
        409, "Conflict", "the deliverable has tasks that are not done: it cannot be signed off"
    ),
    "DELIVERABLE_SIGNED_OFF": _p(
        409, "Conflict", "the task's deliverable is signed off: no more changes to its tasks"
    ),
    "PAYLOAD_INVALID": _p(
        422,
        "Unprocessable request",
        "action 'assign' needs payload.assign_to (a user id)",
        errors=[
            {
                "in": "body",
                "field": "payload.assign_to",
                "message": "action 'assign' needs payload.assign_to (a user id)",
                "type": "value_error",
            }
        ],
    ),
    "PROJECT_NOT_FOUND": _p(404, "Not found", "project 2c4e6a8b-... does not exist"),
    "STREAM_TICKET_INVALID": _p(
        401,
        "Authentication required",
        "the stream ticket is unknown, already used, expired or for another project",
    ),
    "STREAM_CURSOR_INVALID": _p(
        422,
        "Unprocessable request",
        "Last-Event-ID must be a stream cursor as sent in an event's id",
    ),
    "PROJECT_STATUS_CONFLICT": _p(409, "Conflict", "a cancelled project cannot be put on hold"),
    "STATUS_INVALID": _p(400, "Bad request", "status must be one of the documented statuses"),
    "ASSIGNEE_INVALID": _p(400, "Bad request", "assignee must be a user id, me or none"),
    "SORT_INVALID": _p(400, "Bad request", "sort must be one of the documented sort keys"),
    "TASK_NOT_FOUND": _p(404, "Not found", f"task {TASK_ID} does not exist"),
    "TEMPLATE_NOT_FOUND": _p(
        422, "Unprocessable request", "template_id names no template of your organisation"
    ),
    "TEMPLATE_VERSION_NOT_PUBLISHED": _p(
        422, "Unprocessable request", "template version 2 is a draft: publish it first"
    ),
    "DUE_BEFORE_START": _p(422, "Unprocessable request", "due_at is before start_at"),
    "TOO_MANY_TASKS": _p(
        422,
        "Unprocessable request",
        "500 deliverables x 40 nodes = 20000 tasks, more than the limit of 10000 tasks per project",
    ),
    "ACTION_FORBIDDEN": _p(
        403, "Forbidden", "only the assignee or a planner may complete this task"
    ),
    "SYSTEM_ACTION": _p(
        403, "Forbidden", "action 'qc_accept' is a system action: only the platform performs it"
    ),
    "ACTION_NOT_ALLOWED": _p(
        409,
        "Conflict",
        "action 'complete' is not allowed from status 'ready' (allowed: assign, start, cancel)",
        current_status="ready",
    ),
    "TASK_BLOCKED": _p(409, "Conflict", "the task waits for 2 unfinished upstream tasks"),
    "PROJECT_NOT_ACTIVE": _p(409, "Conflict", "the project is on_hold: its tasks cannot move"),
    "ACTION_UNKNOWN": _p(
        422,
        "Unprocessable request",
        "unknown action 'finish'; the actions are: " + ", ".join(USER_ACTIONS),
    ),
    "TEMPLATE_VERSION_NOT_FOUND": ProblemExample(
        (404, 422),
        "Unprocessable request",
        "to_version: template 0b6f8a8e-... has no version 9",
        {},
    ),
    "RENAME_SOURCE_UNKNOWN": _p(
        422,
        "Unprocessable request",
        "rules.rename.weld: rename of 'weld': the project's version has no node 'weld'",
    ),
    "RENAME_TARGET_UNKNOWN": _p(
        422,
        "Unprocessable request",
        "rules.rename.weld: rename of 'weld' to 'weld-frame': the target version has no node "
        "'weld-frame'",
    ),
    "RENAME_TARGET_TAKEN": _p(
        422,
        "Unprocessable request",
        "rules.rename.weld: rename of 'weld' to 'cut': 'cut' is already a node of the project's "
        "version",
    ),
    "MIGRATION_PLAN_NOT_FOUND": ProblemExample(
        (404, 422),
        "Not found",
        f"migration plan {PLAN_ID} not found for this project",
        {},
    ),
    "MIGRATION_PLAN_OF_ANOTHER_PROJECT": _p(
        422,
        "Unprocessable request",
        f"plan_id: plan {PLAN_ID} is a plan of another project, not of project 2c4e6a8b-...",
    ),
    "MIGRATION_PLAN_STALE": _p(
        409,
        "Conflict",
        "1 change(s) since the plan was made: make a new plan",
        changed=[
            {
                "what": "task",
                "task_id": TASK_ID,
                "node_key": "weld",
                "status": "in_progress",
                "planned_row_version": 2,
                "current_row_version": 3,
            }
        ],
        changed_count=1,
    ),
    "MIGRATION_PLAN_EXPIRED": _p(
        409, "Conflict", f"plan {PLAN_ID} expired at 2026-12-03T09:00:00+00:00: make a new plan"
    ),
    "MIGRATION_PLAN_APPLIED": _p(409, "Conflict", f"plan {PLAN_ID} was already applied"),
    "MIGRATION_PLAN_HAS_CONFLICTS": _p(
        409,
        "Conflict",
        f"plan {PLAN_ID} has 1 blocking conflict(s): make a new plan with rules that settle them",
    ),
    "FROM_VERSION_IS_TARGET": _p(
        422, "Unprocessable request", "from_versions: version 2 is the target"
    ),
    "MIGRATION_JOB_NOT_FOUND": _p(404, "Not found", "migration job 9d2c... not found"),
}

API_DOCS = ServiceDocs(operations=OPERATIONS, problems=PROBLEMS)

TAGS: list[dict[str, str]] = [
    {
        "name": "projects",
        "description": "Work started from a published template version: one task per node "
        "and deliverable; hold, resume, cancel, the dashboard and the graph.",
    },
    {
        "name": "deliverables",
        "description": "The units a project delivers, each with a serial number; an "
        "approver signs them off or rejects them, reopening tasks.",
    },
    {
        "name": "task transitions",
        "description": "The task state machine: apply an action (assign, start, complete, "
        "...), in bulk or one at a time, and read a task's history.",
    },
    {"name": "tasks", "description": "Find and read tasks: by project, status, assignee."},
    {
        "name": "project migrations",
        "description": "Move running projects to another template version: a dry-run plan, "
        "rules for every conflict, one audited transaction per project, resumable batches.",
    },
    {
        "name": "stream",
        "description": "A project's events live as Server-Sent Events, resumable with "
        "Last-Event-ID; single-use tickets for browsers' EventSource.",
    },
]
