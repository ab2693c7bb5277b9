"""Pacing primitives: the adaptive window (AIMD) and token buckets; backoff and Retry-After parsing."""

from __future__ import annotations

import asyncio
import random
import time

import pytest

from autodata.llm.limits import AdaptiveWindow, TokenBucket, request_priority
from autodata.llm.retry import backoff_delay, parse_retry_after


async def test_window_caps_in_flight():
    w = AdaptiveWindow(maximum=4)
    active = 0
    peak = 0

    async def job():
        nonlocal active, peak
        await w.acquire()
        active += 1
        peak = max(peak, active)
        await asyncio.sleep(0.005)
        active -= 1
        w.release()
        w.on_success()

    await asyncio.gather(*(job() for _ in range(40)))
    assert peak == 4 == w.peak_in_flight
    assert w.in_flight == 0


def test_window_halves_once_per_overload_episode_and_recovers():
    w = AdaptiveWindow(maximum=32)
    epoch = w.epoch
    assert w.on_overload(epoch) is True
    assert w.limit == 16
    # other requests that started in the same episode do not shrink it again
    assert w.on_overload(epoch) is False
    assert w.limit == 16
    assert w.on_overload(w.epoch) is True
    assert w.limit == 8 and w.shrinks == 2 and w.low_water == 8
    successes = 0
    while w.limit < 32:
        w.on_success()
        successes += 1
    # additive increase: about one step per window of successes: 8+9+...+31 = 468
    assert 400 <= successes <= 500


def test_window_never_below_minimum():
    w = AdaptiveWindow(maximum=8, minimum=2)
    for _ in range(10):
        w.on_overload(w.epoch)
    assert w.limit == 2


async def test_window_cancellation_releases_slot():
    w = AdaptiveWindow(maximum=1)
    await w.acquire()
    waiter = asyncio.create_task(w.acquire())
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    w.release()
    assert w.in_flight == 0
    await asyncio.wait_for(w.acquire(), 1)


async def test_window_serves_waiters_by_priority_then_arrival():
    """A freed slot goes to the waiter of the lowest ``request_priority`` (the oldest document), ties in
    arrival order; a cancelled waiter leaves the queue without taking a slot."""
    w = AdaptiveWindow(maximum=1)
    await w.acquire()
    order: list[str] = []

    async def waiter(name: str, priority: int) -> None:
        request_priority.set(priority)  # this task's context, as the run driver sets it per document
        await w.acquire()
        order.append(name)
        w.release()

    tasks = [asyncio.create_task(waiter(n, p)) for n, p in (("new", 9), ("old-a", 2), ("gone", 1), ("old-b", 2))]
    await asyncio.sleep(0)
    assert w.waiting == 4
    tasks[2].cancel()
    with pytest.raises(asyncio.CancelledError):
        await tasks[2]
    assert w.waiting == 3
    w.release()
    await asyncio.gather(tasks[0], tasks[1], tasks[3])
    assert order == ["old-a", "old-b", "new"] and w.in_flight == 0
    assert request_priority.get() == 0  # the tasks' settings stayed in their own contexts


def test_token_bucket_reservations_queue_up():
    b = TokenBucket(per_minute=600, burst_seconds=1)  # 10/s, capacity 10
    delays = [b.reserve(1) for _ in range(15)]
    assert delays[:10] == [0.0] * 10
    assert delays[10] == pytest.approx(0.1, abs=0.02)
    assert delays[14] == pytest.approx(0.5, abs=0.02)


async def test_token_bucket_paces_requests_per_minute():
    b = TokenBucket(per_minute=1200, burst_seconds=0.05)  # 20/s, capacity 1
    start = time.monotonic()
    for _ in range(11):
        await b.acquire(1)
    elapsed = time.monotonic() - start
    assert 0.4 <= elapsed <= 1.5  # 10 waits of 50 ms


def test_token_bucket_adjust_settles_estimates():
    b = TokenBucket(per_minute=6000, burst_seconds=1)  # 100/s
    b.reserve(100)
    b.adjust(50)  # used 50 more than reserved
    assert b.reserve(1) > 0.4
    b2 = TokenBucket(per_minute=6000, burst_seconds=1)
    b2.reserve(100)
    b2.adjust(-100)  # gave back everything
    assert b2.reserve(50) == 0.0


def test_backoff_grows_exponentially_with_bounded_jitter():
    rng = random.Random(0)
    for attempt in range(6):
        d = backoff_delay(attempt, base=0.5, cap=8, rng=rng)
        ceiling = min(8, 0.5 * 2**attempt)
        assert ceiling / 2 <= d <= ceiling


def test_parse_retry_after_forms():
    assert parse_retry_after({"retry-after": "2"}) == 2.0
    assert parse_retry_after({"retry-after-ms": "250"}) == 0.25
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after({}) is None
    assert parse_retry_after({"retry-after": "100000"}) == 600.0
    from email.utils import formatdate

    date = formatdate(time.time() + 30, usegmt=True)
    assert 25 <= parse_retry_after({"retry-after": date}) <= 31
