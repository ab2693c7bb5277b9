"""Rough token estimates, for budgets before a server has told us the real count.

Four characters a token is the usual rule of thumb for English with BPE vocabularies; it only has
to be close enough to pace a tokens-per-minute budget, which is settled with the real count after.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

MESSAGE_OVERHEAD = 4


def estimate_tokens(text: str) -> int:
    return (len(text) + 3) // 4


def estimate_messages(messages: Iterable[dict[str, Any]]) -> int:
    total = 3
    for m in messages:
        content = m.get("content")
        if isinstance(content, str):
            total += estimate_tokens(content)
        elif isinstance(content, list):
            for part in content:
                if isinstance(part, dict) and isinstance(part.get("text"), str):
                    total += estimate_tokens(part["text"])
        total += MESSAGE_OVERHEAD
    return total
