"""Writing a typed event into the outbox of the current unit of work: `servicekit.outbox.emit`."""

from servicekit.outbox import emit

__all__ = ["emit"]
