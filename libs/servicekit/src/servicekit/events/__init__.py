"""The event backbone: outbox relay to Redis Streams, idempotent consumers, dead letters.

See docs/events.md for the contract, the stream names, the metrics and the operations commands.
"""

from contracts.envelope import CloudEvent, Envelope
from servicekit.events.consumer import Consumer
from servicekit.events.deadletters import DeadLetter, list_dead_letters, redrive
from servicekit.events.handlers import EventHandlers
from servicekit.events.names import dead_letter_stream, redrive_stream, stream_for
from servicekit.events.publish import emit
from servicekit.events.relay import Relay
from servicekit.events.runtime import EventsRuntime, run_worker

__all__ = [
    "CloudEvent",
    "Consumer",
    "DeadLetter",
    "Envelope",
    "EventHandlers",
    "EventsRuntime",
    "Relay",
    "dead_letter_stream",
    "emit",
    "list_dead_letters",
    "redrive",
    "redrive_stream",
    "run_worker",
    "stream_for",
]
