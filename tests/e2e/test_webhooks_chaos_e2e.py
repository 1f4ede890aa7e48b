"""Webhooks survive crashes: the Celery worker SIGKILLed every 2 s while events flow, and Redis
(Celery's broker) restarted once; afterwards every (endpoint, event) pair has arrived.

`make test` sends WEBHOOK_CHAOS_EVENTS=300 (default); `make chaos` sends 1,000. Duplicates on
the wire are expected (at least once) and reported; the receiver deduplicates by webhook-id as
subscribers should.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from blueprint_stack import Stack
from blueprint_stack.keys import mint_dev_token
from blueprint_stack.testing import wait_for
from notify_svc.receiver import Receiver

pytestmark = [pytest.mark.e2e, pytest.mark.chaos]

EVENTS = int(os.environ.get("WEBHOOK_CHAOS_EVENTS", "300"))
KILL_EVERY = 2.0


@pytest.mark.timeout(900)
def test_killed_workers_and_a_redis_restart_lose_no_delivery(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    org, user = uuid.uuid4(), uuid.uuid4()
    token = mint_dev_token(stack.config.keys_dir, roles=["planner"], org_id=org, user_id=user)
    headers = {"Authorization": f"Bearer {token}"}
    # Straight to notify-svc: the gateway's write limit would pace the load, not the workers.
    base = f"http://127.0.0.1:{stack.config.service_port('notify-svc')}/api/v1/webhooks"
    with Receiver() as receiver, httpx.Client(base_url=base, headers=headers, timeout=30) as api:
        hooks = [
            api.post("/endpoints", json={"url": receiver.url, "event_types": ["webhook.test"]})
            .raise_for_status()
            .json()
            for _ in range(2)
        ]
        sent: list[tuple[str, str]] = []  # (endpoint id, event id)
        lock = threading.Lock()

        def send(index: int) -> None:
            hook = hooks[index % 2]
            for _ in range(20):
                resp = api.post(f"/endpoints/{hook['id']}/test")
                if resp.status_code == 202:
                    with lock:
                        sent.append((hook["id"], resp.json()["event_id"]))
                    return
                time.sleep(0.2)
            raise AssertionError(f"test event not accepted: {resp.status_code} {resp.text}")

        pool = ThreadPoolExecutor(4)
        futures = [pool.submit(send, i) for i in range(EVENTS)]
        kills, restarted = 0, False
        started = time.monotonic()
        while not all(f.done() for f in futures) or kills < 5:
            time.sleep(KILL_EVERY)
            stack.stop_process("notify-celery", kill=True)
            stack.start_process("notify-celery")
            kills += 1
            if not restarted and kills == 3:
                stack.stop_process("redis")
                stack.start_process("redis")
                restarted = True
        for f in futures:
            f.result()
        pool.shutdown()
        load_seconds = time.monotonic() - started

        def everything_arrived() -> bool:
            got = {r.webhook_id for r in receiver.requests()}
            return all(event_id in got for _, event_id in sent)

        wait_for(everything_arrived, "every delivery after the faults", 240.0)
        requests = receiver.requests()
    secrets = {h["id"]: h["secret"] for h in hooks}
    by_event = {event_id: endpoint for endpoint, event_id in sent}
    for request in requests:
        Webhook(secrets[by_event[request.webhook_id]]).verify(request.body, request.headers)
    unique = {r.webhook_id for r in requests}
    duplicates = len(requests) - len(unique)
    with capsys.disabled():
        print(
            f"\nwebhook chaos: {len(sent)} (endpoint, event) pairs over {load_seconds:.0f}s, "
            f"worker SIGKILLed {kills}x, Redis restarted once; all received; "
            f"{duplicates} duplicates on the wire"
        )
    assert len(sent) == EVENTS and unique == {event_id for _, event_id in sent}
