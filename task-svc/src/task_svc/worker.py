"""`python -m task_svc.worker`: task-svc's outbox relay and event consumer, no HTTP API.

Run it when `TASK_SVC_EVENTS_IN_PROCESS=false` takes them out of the API processes.
"""

from __future__ import annotations

from servicekit.events import run_worker
from task_svc.main import create_app
from task_svc.settings import Settings


def main() -> None:
    run_worker(create_app(Settings(events_in_process=False)))


if __name__ == "__main__":
    main()
