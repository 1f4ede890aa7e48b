"""The relay and consumer running inside an app built by build_app (the default mode)."""

from __future__ import annotations

from typing import Any

from servicekit.app import build_app
from servicekit.settings import BaseServiceSettings


def events_settings(kit: Any, redis_url: str, prefix: str, **kw: Any) -> BaseServiceSettings:
    return BaseServiceSettings(
        service_name=kit.proc.SERVICE,
        database_url=kit.events_db.url,
        db_schema="events_test",
        redis_url=redis_url,
        events_stream_prefix=prefix,
        relay_poll_interval_seconds=0.1,
        consumer_block_ms=50,
        log_json=True,
        **kw,
    )


async def test_an_app_runs_its_relay_and_consumer_in_process(
    kit: Any, redis_url: str, prefix: str
) -> None:
    app = build_app(
        events_settings(kit, redis_url, prefix),
        title="events test",
        event_handlers=kit.proc.make_handlers(),
    )
    async with app.router.lifespan_context(app):
        assert app.state.events is not None
        event_id, _ = await kit.write("agg-1")

        async def handled() -> bool:
            return (
                await kit.scalar(
                    "SELECT count(*) FROM events_test.ledger WHERE event_id = :id", id=event_id
                )
                == 1
            )

        await kit.eventually(handled, what="the in-process consumer to handle the event")
    assert app.state.events is not None and not app.state.events._tasks


async def test_an_app_configured_for_a_separate_worker_runs_no_events(
    kit: Any, redis_url: str, prefix: str
) -> None:
    app = build_app(
        events_settings(kit, redis_url, prefix, events_in_process=False),
        title="events test",
        event_handlers=kit.proc.make_handlers(),
    )
    async with app.router.lifespan_context(app):
        assert app.state.events is None
        assert app.state.event_handlers.types() == ["ledger.entry_added"]
