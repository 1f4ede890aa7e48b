"""`python -m notify_svc.worker`: notify-svc's outbox relay and event consumer, no HTTP API.

Run it when `NOTIFY_SVC_EVENTS_IN_PROCESS=false` takes them out of the API processes.
"""

from __future__ import annotations

from notify_svc.main import create_app
from notify_svc.settings import Settings
from servicekit.events import run_worker


def main() -> None:
    run_worker(create_app(Settings(events_in_process=False)))


if __name__ == "__main__":
    main()
