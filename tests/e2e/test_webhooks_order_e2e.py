"""`ordering: per_subject` on the real platform: a receiver that fails 10 % of attempts at random
gets every subject's events strictly in event order, and no later event of a subject is even
attempted while an earlier one waits for its retry.

Events are written as notify-svc's consumer writes them (`fan_out`, committed), so the test
holds the pace and the subjects; the events process, the Celery worker and beat do the rest.
`make test` sends WEBHOOK_ORDER_EVENTS=300 (default) over 20 subjects; `make chaos` 2,000.
"""

from __future__ import annotations

import asyncio
import os
import random
import threading
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from blueprint_stack import Stack
from blueprint_stack.keys import mint_dev_token
from blueprint_stack.stack import service
from blueprint_stack.testing import wait_for
from contracts.envelope import CloudEvent
from contracts.tasks import TaskStatusChangedV1
from notify_svc.events.handlers import fan_out
from notify_svc.receiver import Answer, Received, Receiver
from servicekit.db import make_engine

pytestmark = pytest.mark.e2e

EVENTS = int(os.environ.get("WEBHOOK_ORDER_EVENTS", "300"))
SUBJECTS = 20
FAILURE_RATE = 0.10


def task_event(org_id: uuid.UUID, task_id: uuid.UUID, n: int) -> CloudEvent[Any]:
    now = datetime.now(UTC)
    data = TaskStatusChangedV1(
        task_id=task_id, org_id=org_id, project_id=uuid.uuid4(), deliverable_id=uuid.uuid4(),
        node_key="cut", row_version=n + 1, occurred_at=now, action="start",
        from_status="ready", to_status="in_progress", actor=str(uuid.uuid4()),
    )  # fmt: skip
    return CloudEvent[TaskStatusChangedV1](
        id=str(uuid.uuid4()), source="task-svc", type="task.status_changed", time=now,
        subject=str(task_id), aggregatetype="task", data=data,
    )  # fmt: skip


class Flaky:
    """Answers 500 to a random 10 % of attempts and records every answer in arrival order."""

    def __init__(self, seed: int) -> None:
        self.random = random.Random(seed)
        self.lock = threading.Lock()
        self.answers: list[tuple[str, int]] = []  # (webhook-id, status), in arrival order

    def __call__(self, request: Received) -> Answer:
        with self.lock:
            status = 500 if self.random.random() < FAILURE_RATE else 200
            self.answers.append((request.webhook_id, status))
        return status, {}, b"flaky"


async def publish(url: str, events: list[CloudEvent[Any]]) -> None:
    engine = make_engine(url, schema="notify", application_name="order-test", pool_size=1)
    try:
        for start in range(0, len(events), 25):
            async with AsyncSession(engine) as session, session.begin():
                for event in events[start : start + 25]:
                    assert await fan_out(session, event) == 1
            await asyncio.sleep(0.02)
    finally:
        await engine.dispose()


@pytest.mark.timeout(600)
def test_per_subject_order_holds_under_random_failures(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    org = uuid.uuid4()
    token = mint_dev_token(stack.config.keys_dir, roles=["planner"], org_id=org)
    base = f"http://127.0.0.1:{stack.config.service_port('notify-svc')}/api/v1/webhooks"
    flaky = Flaky(seed=EVENTS)
    subjects = [uuid.uuid4() for _ in range(SUBJECTS)]
    # Round-robin over the subjects: each subject's events are interleaved with the others'.
    events = [task_event(org, subjects[n % SUBJECTS], n // SUBJECTS) for n in range(EVENTS)]
    order = {e.id: (e.subject, n) for n, e in enumerate(events)}
    headers = {"Authorization": f"Bearer {token}"}
    with Receiver(flaky) as receiver, httpx.Client(base_url=base, headers=headers) as api:
        endpoint = api.post(
            "/endpoints",
            json={"url": receiver.url, "event_types": ["task.*"], "ordering": "per_subject"},
        )
        assert endpoint.status_code == 201, endpoint.text
        endpoint_id = endpoint.json()["id"]
        started = time.monotonic()
        asyncio.run(publish(stack.database_url(service("notify-svc")), events))

        def dead_ids() -> set[str]:
            page = api.get(
                f"/endpoints/{endpoint_id}/deliveries", params={"status": "dead", "limit": 200}
            ).raise_for_status()
            return {d["event_id"] for d in page.json()["items"]}

        def settled() -> set[str] | None:
            with flaky.lock:
                succeeded = {wid for wid, status in flaky.answers if status == 200}
            dead = dead_ids()
            if succeeded | dead >= set(order):
                return dead | {"-"}  # truthy even when nothing is dead
            return None

        dead = wait_for(settled, "every event delivered or dead", 300.0) - {"-"}
        seconds = time.monotonic() - started
    with flaky.lock:
        answers = list(flaky.answers)
    # Walk the arrivals: an attempt of a subject's event k is legal only when every earlier
    # event of that subject has succeeded (or is dead: it no longer holds the line).
    done: dict[str, int] = {str(s): 0 for s in subjects}  # next expected index per subject
    per_subject = {str(s): [e.id for e in events if e.subject == str(s)] for s in subjects}
    violations = 0
    for webhook_id, status in answers:
        subject, _ = order[webhook_id]
        line = per_subject[subject]
        while done[subject] < len(line) and line[done[subject]] in dead:
            done[subject] += 1
        position = line.index(webhook_id)
        if position > done[subject]:
            violations += 1
        if status == 200 and position == done[subject]:
            done[subject] += 1
    for subject, line in per_subject.items():
        while done[subject] < len(line) and line[done[subject]] in dead:
            done[subject] += 1
    failures = sum(1 for _, status in answers if status != 200)
    with capsys.disabled():
        print(
            f"\nper-subject order: {EVENTS} events over {SUBJECTS} subjects in {seconds:.0f}s, "
            f"{len(answers)} attempts ({failures} answered 500), {len(dead)} dead, "
            f"{violations} order violations"
        )
    assert violations == 0
    assert all(done[s] == len(per_subject[s]) for s in done), "a subject did not finish"
