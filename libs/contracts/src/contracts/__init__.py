"""Event contracts shared by producers and consumers: the envelope, payload models, catalogue."""

from contracts.envelope import CloudEvent, Envelope
from contracts.registry import EventSpec, all_events, spec_for, spec_for_model

__all__ = ["CloudEvent", "Envelope", "EventSpec", "all_events", "spec_for", "spec_for_model"]
