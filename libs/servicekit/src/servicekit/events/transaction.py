"""The database side of a batch: inbox rows and handlers of its entries in one transaction.

On the happy path that is one INSERT of every inbox row (`ON CONFLICT DO NOTHING RETURNING`; no
row back means a duplicate, skipped), the handlers in stream order, one COMMIT, no savepoints.
If a handler raises, that transaction is rolled back and the batch runs again with a SAVEPOINT
per entry, so the failing entry rolls back only its own inbox row and effects and the others'
commit. If that transaction fails as a whole, the entries run one transaction each.

Which entries may run is the ordering policy's decision (`BatchOrder`); each attempt decides on
its own copy, so a rolled-back attempt leaves no decision behind.
"""

from __future__ import annotations

import logging

from opentelemetry.trace import SpanKind
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from servicekit.events.entries import (
    DEAD_LETTERED,
    DEFERRED,
    DUPLICATE,
    PROCESSED,
    RETRIED,
    Entry,
)
from servicekit.events.names import quoted
from servicekit.events.ordering import BatchOrder
from servicekit.events.tracing import continued_span

log = logging.getLogger("servicekit.events.consumer")


class BatchTransaction:
    """Runs a batch's entries with their inbox rows, for the consumer group `group`."""

    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], *, schema: str, group: str
    ) -> None:
        self.sessionmaker = sessionmaker
        self.group = group
        self._inbox_sql = text(
            f"INSERT INTO {quoted(schema)}.inbox (event_id, event_type, source)"  # noqa: S608 - a checked identifier
            " VALUES (:id, :type, :source) ON CONFLICT (event_id) DO NOTHING RETURNING event_id"
        )
        self._inbox_many_sql = text(
            f"INSERT INTO {quoted(schema)}.inbox (event_id, event_type, source)"  # noqa: S608 - a checked identifier
            " SELECT * FROM unnest(CAST(:ids AS uuid[]), CAST(:types AS text[]),"
            " CAST(:sources AS text[])) ON CONFLICT (event_id) DO NOTHING RETURNING event_id"
        )

    async def run(self, entries: list[Entry], order: BatchOrder) -> BatchOrder:
        """Run `entries`, fast path first; returns the decisions of the attempt that committed.

        Every entry ends with an outcome: processed, duplicate, deferred, retried or
        dead-lettered (the last two are only recorded in Redis afterwards).
        """
        snapshot = order.copy()
        try:
            if await self._fast_transaction(entries, order):
                return order
        except Exception:
            log.debug(
                "event batch failed on the fast path; retrying with savepoints", exc_info=True
            )
        order = snapshot.copy()
        _reset(entries)
        try:
            await self._savepoint_transaction(entries, order)
            return order
        except Exception as exc:
            if len(entries) == 1:
                _reset(entries)
                _fail(entries[0], exc, snapshot)
                return snapshot
            log.warning(
                "event batch transaction failed; handling its entries one by one", exc_info=exc
            )
        return await self._one_by_one(entries, snapshot)

    async def _one_by_one(self, entries: list[Entry], order: BatchOrder) -> BatchOrder:
        """One transaction per entry, to find the one to blame."""
        for entry in entries:
            _reset([entry])
            trial = order.copy()
            try:
                await self._savepoint_transaction([entry], trial)
                order = trial
            except Exception as exc:
                _reset([entry])
                _fail(entry, exc, order)
        return order

    async def _fast_transaction(self, entries: list[Entry], order: BatchOrder) -> bool:
        """The happy path; False (rolled back) when a handler raised."""
        run: list[Entry] = []
        for entry in entries:
            if _defer_if_behind(entry, order):
                continue
            if entry.parse_error is not None:
                _fail(entry, entry.parse_error, order)
                continue
            run.append(entry)
        if not run:
            return True
        try:
            async with self.sessionmaker() as session, session.begin():
                params = {
                    "ids": [e.event_id for e in run],
                    "types": [e.event_type for e in run],
                    "sources": [e.source for e in run],
                }
                new = {row[0] for row in await session.execute(self._inbox_many_sql, params)}
                for entry in run:
                    first = entry.event_id in new
                    if first:
                        new.discard(entry.event_id)  # a second copy in this batch: a duplicate
                        await self._run_handler(session, entry)
                    _settle(entry, first, order)
        except _HandlerFailed:
            return False
        return True

    async def _savepoint_transaction(self, entries: list[Entry], order: BatchOrder) -> None:
        async with self.sessionmaker() as session, session.begin():
            for entry in entries:
                if _defer_if_behind(entry, order):
                    continue
                if entry.parse_error is not None:
                    _fail(entry, entry.parse_error, order)
                    continue
                try:
                    async with session.begin_nested():
                        params = {
                            "id": entry.event_id,
                            "type": entry.event_type,
                            "source": entry.source,
                        }
                        inserted = (await session.execute(self._inbox_sql, params)).first()
                        if inserted is not None:
                            await self._run_handler(session, entry)
                except Exception as exc:
                    cause = exc.__cause__ if isinstance(exc, _HandlerFailed) else exc
                    _fail(entry, cause if isinstance(cause, Exception) else exc, order)
                    continue
                _settle(entry, inserted is not None, order)

    async def _run_handler(self, session: AsyncSession, entry: Entry) -> None:
        event, registered = entry.event, entry.registered
        assert event is not None and registered is not None
        try:
            with continued_span(
                f"process {entry.event_type}",
                event.traceparent,
                kind=SpanKind.CONSUMER,
                attributes={"messaging.consumer.group.name": self.group, "event.id": event.id},
            ):
                log.info("handling %s", entry.event_type, extra={"event_id": event.id})
                await registered.handler(session, event)
        except Exception as exc:
            raise _HandlerFailed from exc


class _HandlerFailed(Exception):
    """A handler raised (the cause); the batch runs again with savepoints."""


def _defer_if_behind(entry: Entry, order: BatchOrder) -> bool:
    if order.defer_if_behind(entry.key, entry.id, entry.deliveries):
        entry.outcome = DEFERRED
        return True
    return False


def _settle(entry: Entry, inserted: bool, order: BatchOrder) -> None:
    entry.outcome = PROCESSED if inserted else DUPLICATE
    order.settle(entry.key, entry.id)


def _fail(entry: Entry, exc: Exception, order: BatchOrder) -> None:
    retried = order.fail(entry.key, entry.id, entry.deliveries)
    entry.outcome, entry.error = (RETRIED if retried else DEAD_LETTERED), exc


def _reset(entries: list[Entry]) -> None:
    for entry in entries:
        entry.outcome = entry.error = None
