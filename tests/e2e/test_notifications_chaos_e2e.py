"""Notifications survive a killed worker: the Celery worker SIGKILLed every 2 s while a burst of
e-mail jobs is sent; afterwards every job is `sent` and its mail is in the stack's SMTP sink
exactly once, or it is visibly `failed` (listed by `?status=failed`; a worker killed while
handing its mail to the SMTP server leaves it failed, as "may or may not have been sent", and
that mail arrived at most once). None is silently lost, none arrives twice.

`make test` sends NOTIFICATION_CHAOS_JOBS=40 with one kill (the defaults: about 20 s, most of
it the restart and the expiry of the killed worker's claims); `make chaos` sends 200 and kills
the worker at least 5 times.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from blueprint_stack import Stack
from blueprint_stack.keys import mint_dev_token
from blueprint_stack.smtp_sink import read_mail_dir
from blueprint_stack.testing import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.chaos]

JOBS = int(os.environ.get("NOTIFICATION_CHAOS_JOBS", "40"))
KILLS = int(os.environ.get("NOTIFICATION_CHAOS_KILLS", "1"))
KILL_EVERY = 2.0


@pytest.mark.timeout(600)
def test_a_killed_worker_loses_no_notification(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    org, user = uuid.uuid4(), uuid.uuid4()
    token = mint_dev_token(stack.config.keys_dir, roles=["planner"], org_id=org, user_id=user)
    address = f"chaos-{org.hex[:8]}@example.com"
    # Straight to notify-svc: the gateway's write limit would pace the load, not the worker.
    base = f"http://127.0.0.1:{stack.config.service_port('notify-svc')}/api/v1/notifications"
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base, headers=headers, timeout=30, trust_env=False) as api:
        jobs: list[str] = []
        lock = threading.Lock()

        def send(index: int) -> None:
            body = {"to": address, "subject": f"burst {index}", "body": f"mail {index}"}
            resp = api.post("/email", json=body).raise_for_status()
            with lock:
                jobs.append(resp.json()["job_id"])

        started = time.monotonic()
        with ThreadPoolExecutor(4) as pool:
            futures = [pool.submit(send, i) for i in range(JOBS)]
            kills = 0
            while not all(f.done() for f in futures) or kills < KILLS:
                time.sleep(KILL_EVERY)
                stack.stop_process("notify-celery", kill=True)
                stack.start_process("notify-celery")
                kills += 1
            for f in futures:
                f.result()
        load_seconds = time.monotonic() - started

        def settled() -> dict[str, str] | None:
            statuses: dict[str, str] = {}
            cursor = None
            while True:
                params = {"limit": "200", **({"cursor": cursor} if cursor else {})}
                page = api.get("/jobs", params=params).raise_for_status().json()
                statuses.update({j["id"]: j["status"] for j in page["items"]})
                cursor = page["next_cursor"]
                if not cursor:
                    break
            done = all(statuses.get(j) in ("sent", "failed") for j in jobs)
            return statuses if done else None

        statuses = wait_for(settled, "every job sent or failed", 240.0)
        failed_listed = {
            j["id"]
            for j in api.get("/jobs", params={"status": "failed", "limit": "200"}).json()["items"]
        }
    mails = [m for m in read_mail_dir(stack.config.mail_dir) if m["To"] == address]
    received = Counter(str(m["Message-ID"]) for m in mails)
    sent = [j for j in jobs if statuses[j] == "sent"]
    failed = [j for j in jobs if statuses[j] == "failed"]
    missing = [j for j in sent if received[f"<{j}@blueprint.notifications>"] == 0]
    twice = [m for m, n in received.items() if n > 1]
    uncertain_arrived = [j for j in failed if received[f"<{j}@blueprint.notifications>"]]
    with capsys.disabled():
        print(
            f"\nnotification chaos: {len(jobs)} e-mail jobs over {load_seconds:.0f}s, worker "
            f"SIGKILLed {kills}x; {len(sent)} sent and received once, {len(failed)} failed and "
            f"listed ({len(uncertain_arrived)} of them had reached the server)"
        )
    assert len(jobs) == JOBS
    assert not missing, f"sent but never received: {missing[:5]}"
    assert not twice, f"received more than once: {twice[:5]}"
    assert set(failed) <= failed_listed
