"""`blueprint webhooks ...`: endpoints, their deliveries, replays, recoveries, the catalogue."""

from __future__ import annotations

from typing import Any

import click

from blueprint_cli import output

BASE = "/api/v1/webhooks"
ENDPOINT_COLUMNS = ["id", "url", "event_types", "ordering", "active", "failing_since"]
DELIVERY_COLUMNS = ["id", "event_type", "status", "attempts", "last_status_code", "created_at"]
DELIVERY_STATUSES = ["pending", "delivering", "succeeded", "failed", "dead"]


@click.group("webhooks")
def group() -> None:
    """Webhook endpoints and deliveries (planner or admin)."""


@group.command("event-types")
@click.pass_context
def event_types(ctx: click.Context) -> None:
    """The event types an endpoint can subscribe to (`--json` adds each JSON Schema)."""
    items = ctx.obj.api.get(f"{BASE}/event-types")["items"]
    output.emit(ctx, items, columns=["type", "version", "producer", "description"])


@group.command("list")
@click.pass_context
def list_(ctx: click.Context) -> None:
    """The organisation's endpoints."""
    items = ctx.obj.api.pages(f"{BASE}/endpoints", limit=100)
    output.emit(ctx, items, columns=ENDPOINT_COLUMNS, title="webhook endpoints")


@group.command()
@click.argument("url")
@click.option(
    "--events", "event_types", required=True,
    help="comma-separated types or patterns, e.g. 'task.*,qc.inspection.failed'",
)  # fmt: skip
@click.option("--description")
@click.option("--ordering", type=click.Choice(["none", "per_subject"]))
@click.option("--rate-limit", "rate_limit", type=int, help="at most this many per second")
@click.pass_context
def create(
    ctx: click.Context,
    url: str,
    event_types: str,
    description: str | None,
    ordering: str | None,
    rate_limit: int | None,
) -> None:
    """Subscribe URL; prints the signing secret, which is shown this once."""
    body: dict[str, Any] = {"url": url, "event_types": _split(event_types)}
    if description:
        body["description"] = description
    if ordering:
        body["ordering"] = ordering
    if rate_limit is not None:
        body["rate_limit_per_second"] = rate_limit
    created = ctx.obj.api.post(f"{BASE}/endpoints", body)
    output.emit(ctx, created, fields=[*ENDPOINT_COLUMNS, "secret"])
    if not ctx.obj.json:
        output.error("store the secret now: it is not shown again")


@group.command()
@click.argument("endpoint_id")
@click.pass_context
def show(ctx: click.Context, endpoint_id: str) -> None:
    """One endpoint."""
    output.emit(ctx, ctx.obj.api.get(f"{BASE}/endpoints/{endpoint_id}"))


@group.command()
@click.argument("endpoint_id")
@click.option("--url")
@click.option("--events", "event_types", help="comma-separated types or patterns")
@click.option("--description")
@click.option("--active/--paused", default=None, help="re-enable or pause deliveries")
@click.option("--rate-limit", "rate_limit", type=int)
@click.pass_context
def update(
    ctx: click.Context,
    endpoint_id: str,
    url: str | None,
    event_types: str | None,
    description: str | None,
    active: bool | None,
    rate_limit: int | None,
) -> None:
    """Change an endpoint (reads its row version first)."""
    changes: dict[str, Any] = {}
    if url:
        changes["url"] = url
    if event_types:
        changes["event_types"] = _split(event_types)
    if description is not None:
        changes["description"] = description
    if active is not None:
        changes["active"] = active
    if rate_limit is not None:
        changes["rate_limit_per_second"] = rate_limit
    if not changes:
        raise click.UsageError("nothing to change: give at least one option")
    api = ctx.obj.api
    current = api.get(f"{BASE}/endpoints/{endpoint_id}")
    changes["expected_row_version"] = current["row_version"]
    output.emit(ctx, api.request("PATCH", f"{BASE}/endpoints/{endpoint_id}", json=changes))


@group.command()
@click.argument("endpoint_id")
@click.pass_context
def delete(ctx: click.Context, endpoint_id: str) -> None:
    """Delete an endpoint and its deliveries."""
    ctx.obj.api.request("DELETE", f"{BASE}/endpoints/{endpoint_id}")
    output.emit(ctx, {"deleted": endpoint_id})


@group.command("rotate-secret")
@click.argument("endpoint_id")
@click.option("--grace", type=int, help="seconds the old secret keeps signing (default 24 h)")
@click.pass_context
def rotate_secret(ctx: click.Context, endpoint_id: str, grace: int | None) -> None:
    """A new signing secret, shown this once."""
    body = {"grace_period_seconds": grace} if grace is not None else None
    output.emit(ctx, ctx.obj.api.post(f"{BASE}/endpoints/{endpoint_id}/rotate-secret", body))


@group.command()
@click.argument("endpoint_id")
@click.pass_context
def test(ctx: click.Context, endpoint_id: str) -> None:
    """Send a `webhook.test` event now; prints its delivery."""
    delivery = ctx.obj.api.post(f"{BASE}/endpoints/{endpoint_id}/test")
    output.emit(ctx, delivery, fields=["id", *DELIVERY_COLUMNS[1:]])


@group.command()
@click.argument("endpoint_id")
@click.option("--status", type=click.Choice(DELIVERY_STATUSES))
@click.option("--event-type", "event_type")
@click.option("--since", help="ISO 8601 time")
@click.option("--until", help="ISO 8601 time")
@click.pass_context
def deliveries(
    ctx: click.Context,
    endpoint_id: str,
    status: str | None,
    event_type: str | None,
    since: str | None,
    until: str | None,
) -> None:
    """An endpoint's deliveries, newest first."""
    items = ctx.obj.api.pages(
        f"{BASE}/endpoints/{endpoint_id}/deliveries", limit=100, max_items=1000,
        status=status, event_type=event_type, since=since, until=until,
    )  # fmt: skip
    output.emit(ctx, items, columns=DELIVERY_COLUMNS, title="deliveries")


@group.command()
@click.argument("delivery_id")
@click.pass_context
def delivery(ctx: click.Context, delivery_id: str) -> None:
    """One delivery with every attempt."""
    found = ctx.obj.api.get(f"{BASE}/deliveries/{delivery_id}")
    if ctx.obj.json:
        output.as_json(found)
        return
    output.record(found, ["id", "endpoint_id", "event_id", *DELIVERY_COLUMNS[1:]])
    output.table(
        found.get("history", []),
        ["number", "attempted_at", "status_code", "duration_ms", "error", "next_attempt_at"],
        title="attempts",
    )


@group.command()
@click.argument("delivery_id")
@click.option("--include-succeeded", is_flag=True, help="send a succeeded one again too")
@click.pass_context
def replay(ctx: click.Context, delivery_id: str, include_succeeded: bool) -> None:
    """Send a failed or dead delivery again now (same webhook-id)."""
    params = {"include_succeeded": "true"} if include_succeeded else None
    found = ctx.obj.api.request("POST", f"{BASE}/deliveries/{delivery_id}/replay", params=params)
    output.emit(ctx, found, fields=["id", *DELIVERY_COLUMNS[1:]])


@group.command()
@click.argument("endpoint_id")
@click.option("--since", required=True, help="ISO 8601 time")
@click.option("--until", help="ISO 8601 time (default: now)")
@click.pass_context
def recover(ctx: click.Context, endpoint_id: str, since: str, until: str | None) -> None:
    """Send every failed and dead delivery of a window again (a job; see `recover-job`)."""
    body = {"since": since, **({"until": until} if until else {})}
    output.emit(ctx, ctx.obj.api.post(f"{BASE}/endpoints/{endpoint_id}/recover", body))


@group.command("recover-job")
@click.argument("job_id")
@click.pass_context
def recover_job(ctx: click.Context, job_id: str) -> None:
    """A recover job's progress."""
    output.emit(ctx, ctx.obj.api.get(f"{BASE}/recover-jobs/{job_id}"))


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]
