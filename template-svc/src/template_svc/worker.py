"""`python -m template_svc.worker`: template-svc's outbox relay and event consumer, no HTTP API.

Run it when `TEMPLATE_SVC_EVENTS_IN_PROCESS=false` takes them out of the API processes.
"""

from __future__ import annotations

from servicekit.events import run_worker
from template_svc.main import create_app
from template_svc.settings import Settings


def main() -> None:
    run_worker(create_app(Settings(events_in_process=False)))


if __name__ == "__main__":
    main()
