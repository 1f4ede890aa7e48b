"""task-svc's API documentation table: operationIds, named request examples, problem codes.

The transition examples are built from the FSM table, one per user action, so the examples
selector of Swagger UI cannot drift from the actions the service accepts.
"""

from __future__ import annotations

from typing import Any

from servicekit.openapi_docs import Example, OperationDoc, ProblemExample, ServiceDocs
from task_svc.projects.schemas import PROJECT_CREATE_EXAMPLE
from task_svc.tasks.fsm import TRANSITIONS, USER_ACTIONS
from task_svc.tasks.transition_schemas import EXAMPLE_ROW_VERSION

TASK_ID = "0b7c1a52-6f0e-4d43-9d0c-2f6d6c1b8e11"
USER_ID = "7d1f3c8e-2a4b-4c6d-8e9f-0a1b2c3d4e5f"


def transition_examples() -> dict[str, Example]:
    """One named example per user action of the state machine, from its row of the table."""
    return {
        str(action): Example(
            summary=f"{action}: {TRANSITIONS[action].summary}",
            value={
                "action": str(action),
                "payload": dict(TRANSITIONS[action].example),
                "expected_row_version": EXAMPLE_ROW_VERSION,
                "client_event_id": f"{action}-2f9c6a1e",
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
        "name": "stream",
        "description": "A project's events live as Server-Sent Events, resumable with "
        "Last-Event-ID; single-use tickets for browsers' EventSource.",
    },
]
