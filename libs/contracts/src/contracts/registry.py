"""The catalogue of event types: which payload model, which version, which service publishes it.

A payload module defines Pydantic models with two class variables, `event_type` (e.g.
`template.version.published`) and `schema_version` (1, 2, ...). The modules are listed below
explicitly with the service that publishes their events; the registry imports them and collects
every model that has an `event_type`.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass
from functools import cache

from pydantic import BaseModel

# module -> producing service. Add a line when a payload module lands.
EVENT_MODULES: dict[str, str] = {
    "contracts.templates": "template-svc",
    "contracts.tasks": "task-svc",
    "contracts.qc": "qc-svc",
    "contracts.webhooks": "notify-svc",
}


@dataclass(frozen=True)
class EventSpec:
    event_type: str
    version: int
    model: type[BaseModel]
    producer: str
    module: str

    @property
    def dataschema(self) -> str:
        return dataschema_for(self.event_type, self.version)

    @property
    def description(self) -> str:
        return inspect.cleandoc(self.model.__doc__ or "")


def dataschema_for(event_type: str, version: int) -> str:
    return f"urn:blueprint:event:{event_type}:v{version}"


def event_type_of(model: type[BaseModel]) -> str | None:
    value = getattr(model, "event_type", None)
    return value if isinstance(value, str) else None


def schema_version_of(model: type[BaseModel]) -> int:
    value = getattr(model, "schema_version", 1)
    return value if isinstance(value, int) else 1


@cache
def all_events() -> tuple[EventSpec, ...]:
    """Every registered event type, sorted by type then version."""
    specs: dict[tuple[str, int], EventSpec] = {}
    for module_name, producer in EVENT_MODULES.items():
        module = importlib.import_module(module_name)
        for value in vars(module).values():
            if not (isinstance(value, type) and issubclass(value, BaseModel)):
                continue
            if value.__module__ != module_name:
                continue
            event_type = event_type_of(value)
            if event_type is None:
                continue
            key = (event_type, schema_version_of(value))
            if key in specs:
                raise ValueError(f"event {event_type} v{key[1]} is defined twice")
            specs[key] = EventSpec(event_type, key[1], value, producer, module_name)
    return tuple(specs[k] for k in sorted(specs))


def spec_for(event_type: str, version: int | None = None) -> EventSpec | None:
    """The spec of a type: the given version, or the latest one."""
    matching = [s for s in all_events() if s.event_type == event_type]
    if version is not None:
        matching = [s for s in matching if s.version == version]
    return matching[-1] if matching else None


def spec_for_model(model: type[BaseModel]) -> EventSpec | None:
    for spec in all_events():
        if spec.model is model:
            return spec
    return None


__all__ = [
    "EVENT_MODULES",
    "EventSpec",
    "all_events",
    "dataschema_for",
    "event_type_of",
    "schema_version_of",
    "spec_for",
    "spec_for_model",
]
