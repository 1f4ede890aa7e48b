"""notify-svc's API documentation table: operationIds, named request examples, problem codes."""

from __future__ import annotations

from servicekit.openapi_docs import Example, OperationDoc, ProblemExample, ServiceDocs

_ENDPOINTS = "/api/v1/webhooks/endpoints"
_ENDPOINT = f"{_ENDPOINTS}/{{endpoint_id}}"
_DELIVERY = "/api/v1/webhooks/deliveries/{delivery_id}"
_ENDPOINT_404 = {404: ["ENDPOINT_NOT_FOUND"]}
_URL_RULES = {422: ["URL_NOT_ALLOWED", "EVENT_TYPE_UNKNOWN"]}
_NOTIFY = "/api/v1/notifications"
_CONTACT = f"{_NOTIFY}/contacts/{{user_id}}"
_JOB = f"{_NOTIFY}/jobs/{{job_id}}"

OPERATIONS: dict[tuple[str, str], OperationDoc] = {
    ("POST", _ENDPOINTS): OperationDoc(
        "createWebhookEndpoint",
        requests={
            "task_events": Example(
                "every task event, in any order",
                {
                    "url": "https://hooks.example.com/blueprint",
                    "description": "ERP sync",
                    "event_types": ["task.*"],
                },
            ),
            "per_subject": Example(
                "QC failures and status changes, in order per task, at most 20 per second",
                {
                    "url": "https://hooks.example.com/quality",
                    "description": "quality board",
                    "event_types": ["qc.inspection.failed", "task.status_changed"],
                    "ordering": "per_subject",
                    "rate_limit_per_second": 20,
                },
            ),
        },
        errors=_URL_RULES,
    ),
    ("GET", _ENDPOINTS): OperationDoc("listWebhookEndpoints"),
    ("GET", _ENDPOINT): OperationDoc("getWebhookEndpoint", errors=_ENDPOINT_404),
    ("PATCH", _ENDPOINT): OperationDoc(
        "updateWebhookEndpoint",
        requests={
            "pause": Example(
                "pause deliveries (they wait until the endpoint is active again)",
                {"active": False, "expected_row_version": 1},
            ),
            "retarget": Example(
                "send to a new URL and subscribe to more events",
                {
                    "url": "https://hooks.example.com/v2/blueprint",
                    "event_types": ["task.*", "qc.*"],
                    "expected_row_version": 1,
                },
            ),
        },
        errors={**_ENDPOINT_404, **_URL_RULES},
    ),
    ("DELETE", _ENDPOINT): OperationDoc("deleteWebhookEndpoint", errors=_ENDPOINT_404),
    ("POST", f"{_ENDPOINT}/rotate-secret"): OperationDoc(
        "rotateWebhookSecret", errors=_ENDPOINT_404
    ),
    ("POST", f"{_ENDPOINT}/test"): OperationDoc(
        "sendWebhookTest", errors={**_ENDPOINT_404, 409: ["ENDPOINT_DISABLED"]}
    ),
    ("GET", f"{_ENDPOINT}/deliveries"): OperationDoc("listWebhookDeliveries", errors=_ENDPOINT_404),
    ("POST", f"{_ENDPOINT}/recover"): OperationDoc(
        "recoverWebhookDeliveries", errors=_ENDPOINT_404
    ),
    ("GET", "/api/v1/webhooks/recover-jobs/{job_id}"): OperationDoc(
        "getWebhookRecoverJob", errors={404: ["RECOVER_JOB_NOT_FOUND"]}
    ),
    ("GET", _DELIVERY): OperationDoc("getWebhookDelivery", errors={404: ["DELIVERY_NOT_FOUND"]}),
    ("POST", f"{_DELIVERY}/replay"): OperationDoc(
        "replayWebhookDelivery",
        errors={
            404: ["DELIVERY_NOT_FOUND"],
            409: ["DELIVERY_IN_PROGRESS", "DELIVERY_SUCCEEDED", "ENDPOINT_DISABLED"],
        },
    ),
    ("GET", "/api/v1/webhooks/event-types"): OperationDoc("listWebhookEventTypes"),
    **{
        ("PUT", _CONTACT): OperationDoc(
            "putNotificationContact",
            requests={
                "mail_me": Example(
                    "where this user's notifications go",
                    {"email": "ada@example.com", "name": "Ada Byron", "locale": "en"},
                ),
                "quiet": Example(
                    "no e-mail for this user for now",
                    {"email": "ada@example.com", "quiet": True},
                ),
            },
        ),
        ("GET", _CONTACT): OperationDoc(
            "getNotificationContact", errors={404: ["CONTACT_NOT_FOUND"]}
        ),
        ("GET", f"{_NOTIFY}/rules"): OperationDoc("listNotificationRules"),
        ("PUT", f"{_NOTIFY}/rules"): OperationDoc(
            "putNotificationRules",
            requests={
                "qc_to_quality": Example(
                    "QC rejects to the assignee and the quality team's address",
                    {
                        "rules": [
                            {
                                "event_type": "qc.inspection.failed",
                                "recipients": [
                                    {"kind": "assignee"},
                                    {"kind": "address", "address": "quality@example.com"},
                                ],
                            }
                        ]
                    },
                ),
                "no_overdue": Example(
                    "no overdue notices; reminders to the assignee and the planner",
                    {
                        "rules": [
                            {"event_type": "deadline.overdue", "enabled": False},
                            {
                                "event_type": "deadline.reminder",
                                "recipients": [{"kind": "assignee"}, {"kind": "planner"}],
                            },
                        ]
                    },
                ),
            },
            errors={422: ["EVENT_TYPE_UNKNOWN"]},
        ),
        ("GET", f"{_NOTIFY}/settings"): OperationDoc("getNotificationSettings"),
        ("PUT", f"{_NOTIFY}/settings"): OperationDoc(
            "putNotificationSettings",
            requests={
                "two_hours": Example(
                    "remind two hours ahead; sign-offs to the approvers' list",
                    {"reminder_lead_minutes": 120, "approvers_email": "approvers@example.com"},
                ),
            },
        ),
        ("POST", f"{_NOTIFY}/settings/webhook-secret"): OperationDoc(
            "newNotificationWebhookSecret"
        ),
        ("POST", f"{_NOTIFY}/email"): OperationDoc(
            "sendNotificationEmail",
            requests={
                "address": Example(
                    "to an address",
                    {
                        "to": "ops@example.com",
                        "subject": "Line 2 stops at 14:00",
                        "body": "Maintenance on line 2 from 14:00 to 15:00.",
                    },
                ),
                "user": Example(
                    "to a user with a contact",
                    {
                        "to_user": "7c1e2d3f-4a5b-4c6d-8e9f-0a1b2c3d4e5f",
                        "subject": "Your shift tomorrow",
                        "body": "You are on line 3 from 06:00.",
                    },
                ),
            },
            errors={422: ["USER_UNKNOWN"]},
        ),
        ("POST", f"{_NOTIFY}/webhook"): OperationDoc(
            "sendNotificationWebhook",
            requests={
                "report": Example(
                    "a shift report to the ERP, signed with the org's secret",
                    {
                        "url": "https://erp.example.com/hooks/blueprint",
                        "payload": {"kind": "shift_report", "line": 2, "units": 418},
                    },
                ),
            },
            errors={409: ["WEBHOOK_SECRET_MISSING"], 422: ["URL_NOT_ALLOWED"]},
        ),
        ("GET", f"{_NOTIFY}/jobs"): OperationDoc("listNotificationJobs"),
        ("GET", _JOB): OperationDoc("getNotificationJob", errors={404: ["JOB_NOT_FOUND"]}),
        ("POST", f"{_JOB}/retry"): OperationDoc(
            "retryNotificationJob",
            errors={404: ["JOB_NOT_FOUND"], 409: ["JOB_NOT_RETRYABLE"]},
        ),
    },
}


def _p(status: int, title: str, detail: str, **extra: object) -> ProblemExample:
    return ProblemExample((status,), title, detail, extra=extra)


_UNPROCESSABLE = "Unprocessable request"

PROBLEMS: dict[str, ProblemExample] = {
    "ENDPOINT_NOT_FOUND": _p(404, "Not found", "no webhook endpoint 5d1c... in this org"),
    "DELIVERY_NOT_FOUND": _p(404, "Not found", "no webhook delivery 8e2f... in this org"),
    "RECOVER_JOB_NOT_FOUND": _p(404, "Not found", "no recover job 0a9b... in this org"),
    "URL_NOT_ALLOWED": _p(
        422,
        _UNPROCESSABLE,
        "10.0.0.1 is a private address: webhooks are not sent into private networks",
        rule="private",
    ),
    "EVENT_TYPE_UNKNOWN": _p(
        422,
        _UNPROCESSABLE,
        "no event type matches ['task.finished']: see GET /api/v1/webhooks/event-types",
    ),
    "ENDPOINT_DISABLED": _p(
        409, "Conflict", "this endpoint is disabled: re-enable it (PATCH active=true) to send to it"
    ),
    "DELIVERY_IN_PROGRESS": _p(
        409, "Conflict", "this delivery is being attempted right now: wait for the attempt to end"
    ),
    "DELIVERY_SUCCEEDED": _p(
        409,
        "Conflict",
        "this delivery succeeded already: pass include_succeeded=true to send it again",
    ),
    "CONTACT_NOT_FOUND": _p(
        404,
        "Not found",
        "user 7c1e... has no contact in this org: PUT /api/v1/notifications/contacts/7c1e... first",
    ),
    "JOB_NOT_FOUND": _p(404, "Not found", "no notification job 5b4a... in this org"),
    "USER_UNKNOWN": _p(
        422,
        _UNPROCESSABLE,
        "user 7c1e... is unknown here (no contact in this org): PUT "
        "/api/v1/notifications/contacts/7c1e... or send `to` an address",
        errors=[
            {
                "in": "body",
                "field": "to_user",
                "message": "no contact for this user",
                "type": "value_error",
            }
        ],
    ),
    "WEBHOOK_SECRET_MISSING": _p(
        409,
        "Conflict",
        "this org has no webhook signing secret yet: POST "
        "/api/v1/notifications/settings/webhook-secret to make one (shown once)",
    ),
    "JOB_NOT_RETRYABLE": _p(
        409,
        "Conflict",
        "this notification is sent: only failed or skipped ones can be retried",
        current_status="sent",
    ),
}

TAGS: list[dict[str, str]] = [
    {
        "name": "webhooks",
        "description": "Subscriptions: endpoints with the event types they receive, their "
        "signing secrets (shown once, rotated with a grace period), the event catalogue.",
    },
    {
        "name": "webhook deliveries",
        "description": "What was sent where: deliveries with every attempt, replay of one, "
        "recovery of a time window, and a test event.",
    },
    {
        "name": "notifications",
        "description": "E-mail notifications: how each user is reached (contacts), which events "
        "e-mail whom (rules per org), deadline reminder settings and the org's webhook secret.",
    },
    {
        "name": "notification jobs",
        "description": "Ad-hoc e-mails and one-off signed webhooks (202 and a job id), every "
        "notification with its attempts, the failed ones, and retry.",
    },
]

API_DOCS = ServiceDocs(operations=OPERATIONS, problems=PROBLEMS)
