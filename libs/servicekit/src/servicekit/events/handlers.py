"""Event handlers registered by event type, with the payload model they expect.

    handlers = EventHandlers()

    @handlers.on(TemplateVersionPublishedV1)
    async def cache_version(
        session: AsyncSession, event: Envelope[TemplateVersionPublishedV1]
    ) -> None:
        ...

A handler runs inside the consumer's transaction, together with the inbox row of the event:
it flushes, never commits. It must not call other services or enqueue side effects directly;
it writes rows (and outbox events) only.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.envelope import CloudEvent
from contracts.registry import event_type_of, spec_for_model
from servicekit.events.names import stream_for

M = TypeVar("M", bound=BaseModel)
Handler = Callable[[AsyncSession, Any], Awaitable[None]]
H = TypeVar("H", bound=Handler)


@dataclass(frozen=True)
class Registered:
    event_type: str
    model: type[BaseModel]
    envelope_model: type[CloudEvent[Any]]
    producer: str
    handler: Handler


class EventHandlers:
    def __init__(self) -> None:
        self._by_type: dict[str, Registered] = {}

    def add(self, model: type[BaseModel], handler: Handler, *, producer: str | None = None) -> None:
        """Register `handler` for `model`'s event type.

        `producer` (the publishing service, hence the stream to read) defaults to the one the
        contracts registry names for the model.
        """
        event_type = event_type_of(model)
        if event_type is None:
            raise ValueError(f"{model.__name__} has no `event_type` class variable")
        if event_type in self._by_type:
            raise ValueError(f"a handler for {event_type} is already registered")
        if producer is None:
            spec = spec_for_model(model)
            if spec is None:
                raise ValueError(
                    f"{model.__name__} is not in the contracts registry; pass producer="
                )
            producer = spec.producer
        self._by_type[event_type] = Registered(
            event_type,
            model,
            CloudEvent[model],  # type: ignore[valid-type]
            producer,
            handler,
        )

    def on(self, model: type[M], *, producer: str | None = None) -> Callable[[H], H]:
        def decorate(handler: H) -> H:
            self.add(model, handler, producer=producer)
            return handler

        return decorate

    def get(self, event_type: str) -> Registered | None:
        return self._by_type.get(event_type)

    def types(self) -> list[str]:
        return sorted(self._by_type)

    def producers(self) -> set[str]:
        return {r.producer for r in self._by_type.values()}

    def streams(self, prefix: str = "events") -> list[str]:
        return sorted(stream_for(p, prefix) for p in self.producers())

    def __bool__(self) -> bool:
        return bool(self._by_type)

    def __len__(self) -> int:
        return len(self._by_type)

    def merge(self, others: Iterable[EventHandlers]) -> EventHandlers:
        for other in others:
            for reg in other._by_type.values():
                self.add(reg.model, reg.handler, producer=reg.producer)
        return self
