"""Per-aggregate order of event handling, as a pure policy: no Redis, no database.

One consumer handles one aggregate's entries (stream, aggregate type, subject) in stream order,
also across failures. For each aggregate that has a failed entry, the policy keeps a *line*: the
ids of that aggregate's entries this consumer holds pending, in stream order. Only the entry at
the front may run.

- **defer**: an entry behind the front waits (it stays pending). The line remembers its delivery
  count before this delivery, so that waiting is not counted as an attempt.
- **settle**: the entry at the front was handled (processed, or a duplicate): it leaves the line.
- **fail**: the entry at the front failed. If it will be retried it stays at the front and holds
  its aggregate; once it has had `max_attempts` deliveries it is given up (dead-lettered) and
  leaves the line, so its aggregate continues without it.
- **release**: when the failed entry at the front has left, the deferred entries behind it are
  free to be taken back and handled, in order, each on what is then its next delivery.

The decisions about one batch are taken on a `BatchOrder`, a working copy of its aggregates'
lines that can be copied before a database transaction and dropped if that rolls back; the
`OrderingPolicy` adopts it with `conclude` once the batch's outcomes are recorded.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

AggregateKey = tuple[str, str, str]
"""(stream, aggregate type, subject)."""

# A line maps entry id -> the delivery count to restore on a deferred entry; the failed entry at
# the front has this marker instead, as its own delivery count is real.
_FAILED = -1
_Lines = dict[AggregateKey, dict[str, int]]


class BatchOrder:
    """The ordering decisions of one batch, on a copy of the lines of the batch's aggregates."""

    __slots__ = ("_keys", "_lines", "max_attempts")

    def __init__(self, keys: Collection[AggregateKey], lines: _Lines, max_attempts: int) -> None:
        self._keys = keys
        self._lines = lines
        self.max_attempts = max_attempts

    def copy(self) -> BatchOrder:
        """An independent copy, to go back to if the transaction it is used in rolls back."""
        lines = {key: dict(line) for key, line in self._lines.items()}
        return BatchOrder(self._keys, lines, self.max_attempts)

    def defer_if_behind(self, key: AggregateKey | None, entry_id: str, deliveries: int) -> bool:
        """Whether the entry must wait behind an earlier entry of its aggregate (then it joins
        that line); False when it may run now."""
        line = self._lines.get(key) if key is not None else None
        if line and next(iter(line)) != entry_id:
            line.setdefault(entry_id, deliveries - 1)
            return True
        return False

    def settle(self, key: AggregateKey | None, entry_id: str) -> None:
        """The entry, which was allowed to run, has been handled."""
        line = self._lines.get(key) if key is not None else None
        if line:
            line.pop(entry_id, None)

    def fail(self, key: AggregateKey | None, entry_id: str, deliveries: int) -> bool:
        """The entry, which was allowed to run, failed on its `deliveries`-th delivery.

        Returns whether it will be retried (it then holds its aggregate); False means it is
        given up and dead-lettered, and no longer holds anyone back.
        """
        retried = deliveries < self.max_attempts
        if key is None:
            return retried
        line = self._lines.setdefault(key, {})
        if retried:
            line[entry_id] = _FAILED  # at the front: had it been behind, it would be deferred
        else:
            line.pop(entry_id, None)
            if not line:
                del self._lines[key]
        return retried

    def waiting_behind(self, key: AggregateKey) -> list[tuple[str, int]]:
        """The deferred entries of the aggregate, with the delivery count to restore on each."""
        line = self._lines.get(key)
        if not line:
            return []
        return [(eid, restore) for eid, restore in line.items() if restore != _FAILED]


class OrderingPolicy:
    """The lines of the aggregates that have a failed entry, across batches."""

    __slots__ = ("_lines", "max_attempts")

    def __init__(self, max_attempts: int) -> None:
        self._lines: _Lines = {}
        self.max_attempts = max_attempts

    def __bool__(self) -> bool:
        """Whether any aggregate is held by a failed entry or has entries waiting."""
        return bool(self._lines)

    def begin(self, keys: Collection[AggregateKey]) -> BatchOrder:
        """The decisions of a batch whose runnable entries belong to the aggregates `keys`."""
        lines = {key: dict(self._lines[key]) for key in keys if key in self._lines}
        return BatchOrder(keys, lines, self.max_attempts)

    def conclude(self, order: BatchOrder) -> list[AggregateKey]:
        """Adopt the batch's decisions; returns the aggregates released by it (their failed
        entry at the front has left, so the deferred entries behind it may run)."""
        released: list[AggregateKey] = []
        for key in order._keys:
            line = order._lines.get(key)
            if line:
                self._lines[key] = line
                if line[next(iter(line))] != _FAILED:
                    released.append(key)
            else:
                self._lines.pop(key, None)
        return released

    def released_entries(self, keys: Iterable[AggregateKey]) -> dict[str, int]:
        """The deferred entries of released aggregates, each with the delivery count its next
        delivery will have."""
        return {
            eid: restore + 1
            for key in keys
            for eid, restore in self._lines.get(key, {}).items()
            if restore != _FAILED
        }

    def unconfirmed(self, keys: Iterable[AggregateKey], in_batch: Collection[str]) -> list[str]:
        """Entries waiting in the lines of `keys` (those whose front is not in the batch) that are
        not in the batch either: whether they are still pending must be checked before the
        batch relies on their line (another replica may have handled them, or the stream may
        have been trimmed)."""
        return [
            eid
            for key in keys
            if (line := self._lines.get(key)) and next(iter(line)) not in in_batch
            for eid in line
            if eid not in in_batch
        ]

    def forget(self, keys: Iterable[AggregateKey], entry_ids: Collection[str]) -> None:
        """Drop entries that are no longer pending with this consumer from the lines of `keys`."""
        if not entry_ids:
            return
        for key in keys:
            line = self._lines.get(key)
            if line:
                for eid in [eid for eid in line if eid in entry_ids]:
                    del line[eid]
                if not line:
                    del self._lines[key]
