"""Which failures are worth another try, and how long to wait before it."""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Mapping

# Status codes where waiting and trying again can help. 408: request timeout; 409: some servers
# use it for transient conflicts; 425: too early; 429: rate limited; 5xx: server trouble.
RETRYABLE_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 520, 521, 522, 523, 524, 529})
# Answers that mean "the server is over capacity": they shrink the adaptive window.
OVERLOAD_STATUS = frozenset({429, 503, 529})

MAX_RETRY_AFTER_S = 600.0


def parse_retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Seconds to wait from ``retry-after-ms`` / ``retry-after`` (seconds or an HTTP date)."""
    if not headers:
        return None
    raw_ms = headers.get("retry-after-ms")
    if raw_ms:
        try:
            return _bounded(float(raw_ms) / 1000.0)
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if not raw:
        return None
    try:
        return _bounded(float(raw))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return _bounded(when.timestamp() - time.time())


def _bounded(seconds: float) -> float | None:
    if seconds != seconds or seconds < 0:  # NaN or negative
        return 0.0 if seconds == seconds else None
    return min(seconds, MAX_RETRY_AFTER_S)


def backoff_delay(attempt: int, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Exponential backoff with equal jitter: half fixed, half random, never above ``cap``.

    Equal jitter (rather than full jitter) keeps a floor under the wait, so a retry storm cannot
    collapse into immediate re-sends, while still spreading clients apart.
    """
    r = rng or random
    ceiling = min(cap, base * (2.0**attempt))
    return ceiling / 2.0 + r.uniform(0.0, ceiling / 2.0)
