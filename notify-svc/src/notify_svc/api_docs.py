"""notify-svc's API documentation table: operationIds, named request examples, problem codes."""

from __future__ import annotations

from servicekit.openapi_docs import Example, OperationDoc, ProblemExample, ServiceDocs

_ENDPOINTS = "/api/v1/webhooks/endpoints"
_ENDPOINT = f"{_ENDPOINTS}/{{endpoint_id}}"
_DELIVERY = "/api/v1/webhooks/deliveries/{delivery_id}"
_ENDPOINT_404 = {404: ["ENDPOINT_NOT_FOUND"]}
_URL_RULES = {422: ["URL_NOT_ALLOWED", "EVENT_TYPE_UNKNOWN"]}

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
]

API_DOCS = ServiceDocs(operations=OPERATIONS, problems=PROBLEMS)
