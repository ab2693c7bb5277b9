"""Per-endpoint pacing: an adaptive in-flight window and token buckets for RPM/TPM budgets.

The window follows additive-increase / multiplicative-decrease (as TCP does): a 429 or overload
answer halves it, every success adds 1/window, so a full window of successes grows it by one. A
burst of 429s caused by the same overload halves it only once: a shrink is taken only for requests
that were started after the previous shrink.

Requests waiting for a slot are served by priority, then in arrival order: the run driver gives each
document's calls its admission order (:data:`request_priority`), so a freed slot goes to the oldest
document in flight. Documents already started finish first, and their next call reaches the server
while its prefix cache still holds the document's earlier prompts (the new documents' calls wait
instead of theirs).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from contextvars import ContextVar

# Lower is served first among requests waiting for a slot; the run driver sets it per document task (its
# admission order), every call the task makes inherits it. 0 (the default) for callers that do not set it.
request_priority: ContextVar[int] = ContextVar("request_priority", default=0)


class AdaptiveWindow:
    """An async semaphore whose size moves between ``minimum`` and ``maximum``."""

    def __init__(self, maximum: int, minimum: int = 1, initial: int | None = None) -> None:
        self.maximum = maximum
        self.minimum = max(1, min(minimum, maximum))
        self.limit: float = float(initial if initial is not None else maximum)
        self.in_flight = 0
        self.peak_in_flight = 0
        self.shrinks = 0
        self.low_water: float = self.limit
        # (priority, arrival, future): a heap, so the lowest priority, then the earliest arrival, is woken first
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._arrivals = itertools.count()
        self._epoch = 0  # bumped on every shrink

    @property
    def waiting(self) -> int:
        """Requests queued for a slot."""
        return len(self._waiters)

    @property
    def epoch(self) -> int:
        return self._epoch

    async def acquire(self) -> int:
        """Wait for a slot; returns the epoch the request started in (pass it to ``on_overload``)."""
        if self.in_flight < int(self.limit) and not self._waiters:
            self._take()
            return self._epoch
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (request_priority.get(), next(self._arrivals), fut)
        heapq.heappush(self._waiters, entry)
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                # we were handed a slot but are being cancelled: give it back
                self.release()
            else:
                try:
                    self._waiters.remove(entry)
                    heapq.heapify(self._waiters)
                except ValueError:
                    pass
            raise
        return self._epoch

    def _take(self) -> None:
        self.in_flight += 1
        if self.in_flight > self.peak_in_flight:
            self.peak_in_flight = self.in_flight

    def release(self) -> None:
        self.in_flight -= 1
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self.in_flight < int(self.limit):
            fut = heapq.heappop(self._waiters)[2]
            if not fut.done():
                self._take()
                fut.set_result(None)

    def on_success(self) -> None:
        if self.limit < self.maximum:
            self.limit = min(float(self.maximum), self.limit + 1.0 / self.limit)
            self._wake()

    def on_overload(self, started_epoch: int) -> bool:
        """Shrink once per overload episode; returns whether this call shrank the window."""
        if started_epoch != self._epoch:
            return False
        self._epoch += 1
        self.limit = max(float(self.minimum), self.limit / 2.0)
        self.low_water = min(self.low_water, self.limit)
        self.shrinks += 1
        return True


class TokenBucket:
    """Continuous-refill bucket; a caller reserves ``amount`` and sleeps off any debt.

    Reservations may drive the level negative, which queues later callers fairly behind earlier
    ones. ``adjust`` settles the difference between an estimate and the real count afterwards.
    """

    def __init__(self, per_minute: float, burst_seconds: float = 5.0) -> None:
        self.rate = per_minute / 60.0
        self.capacity = max(1.0, self.rate * burst_seconds)
        self.level = self.capacity
        self._stamp = time.monotonic()

    def _refill(self) -> None:
        now = time.monotonic()
        self.level = min(self.capacity, self.level + (now - self._stamp) * self.rate)
        self._stamp = now

    def reserve(self, amount: float) -> float:
        """Take ``amount`` now; return how many seconds the caller must wait before using it."""
        self._refill()
        self.level -= amount
        if self.level >= 0:
            return 0.0
        return -self.level / self.rate

    async def acquire(self, amount: float = 1.0) -> None:
        delay = self.reserve(amount)
        if delay > 0:
            await asyncio.sleep(delay)

    def adjust(self, delta: float) -> None:
        """Positive delta: more was used than reserved (debt); negative: give back the surplus."""
        self._refill()
        self.level = min(self.capacity, self.level - delta)
