"""A directory's call log: every model call a command made, in SQLite, written as the calls come back.

``autodata optimize`` keeps its spend here (``DIR/calls.db``) so its totals are counted from what is
stored, not from a session's memory: a session killed with ``kill -9`` loses at most the calls of the
last half second, and a resumed session adds to the same log. (``autodata run`` keeps the same rows
in its run store, ``run.db``.) Rows have the shape :class:`autodata.llm.usage.UsageMeter` tells its
listener: at, document_id, endpoint, role, cache_hit, input_tokens, output_tokens, cost_usd,
latency_s, and optionally ``estimated`` (the server sent no usage; the tokens are estimates).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from autodata.errors import UserError

FLUSH_S = 0.5

_SCHEMA = """
CREATE TABLE IF NOT EXISTS calls (
    session REAL NOT NULL, at REAL NOT NULL, document_id TEXT, endpoint TEXT NOT NULL, role TEXT NOT NULL,
    cache_hit INTEGER NOT NULL, input_tokens INTEGER NOT NULL, output_tokens INTEGER NOT NULL,
    cost_usd REAL NOT NULL, latency_s REAL NOT NULL, estimated INTEGER NOT NULL DEFAULT 0
);
"""
# What a summary counts from the calls table: calls made, cache hits, tokens of calls made (a cache hit's
# row carries the usage it once cost, not counted again), cost, and calls whose tokens are estimates.
TOTALS_SQL = (
    "SUM(1 - cache_hit), SUM(cache_hit), SUM(CASE WHEN cache_hit THEN 0 ELSE input_tokens END), "
    "SUM(CASE WHEN cache_hit THEN 0 ELSE output_tokens END), SUM(cost_usd), "
    "SUM(CASE WHEN cache_hit THEN 0 ELSE estimated END)"
)


def totals(row: Sequence[Any]) -> dict[str, Any]:
    """The usage dict of one ``TOTALS_SQL`` row (SQL's NULL of an empty table counted as 0)."""
    calls, hits, tin, tout, cost, est = row
    return {
        "calls": int(calls or 0),
        "cache_hits": int(hits or 0),
        "input_tokens": int(tin or 0),
        "output_tokens": int(tout or 0),
        "cost_usd": float(cost or 0.0),
        "estimated_usage_calls": int(est or 0),
    }


CALL_FIELDS = (
    "at",
    "document_id",
    "endpoint",
    "role",
    "cache_hit",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "latency_s",
)


def insert_calls(db: sqlite3.Connection, session: float, rows: list[dict[str, Any]]) -> None:
    """Append call rows (dicts with :data:`CALL_FIELDS`, ``estimated`` optional) to ``db``'s ``calls``
    table under ``session``: the one writer of call rows, for this log and the run store."""
    db.executemany(
        f"INSERT INTO calls (session, {', '.join(CALL_FIELDS)}, estimated) VALUES (?{', ?' * len(CALL_FIELDS)}, ?)",
        [(session, *(r[f] for f in CALL_FIELDS), int(bool(r.get("estimated")))) for r in rows],
    )


class CallLog:
    """Append-only call rows in ``path``; :meth:`add` buffers, writing at most every ``FLUSH_S``."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(self.path), timeout=60.0, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
        except (OSError, sqlite3.DatabaseError) as exc:
            raise UserError(f"cannot open the call log {self.path}: {exc}") from None
        self.session = time.time()
        self._buffer: list[dict[str, Any]] = []
        self._last = time.monotonic()

    def add(self, row: dict[str, Any]) -> None:
        self._buffer.append(row)
        if time.monotonic() - self._last >= FLUSH_S:
            self.flush()

    def flush(self) -> None:
        rows, self._buffer = self._buffer, []
        self._last = time.monotonic()
        if rows:
            insert_calls(self._db, self.session, rows)

    def totals(self) -> dict[str, float]:
        """Calls made, cache hits, tokens and cost of calls made, over every session of the directory."""
        self.flush()
        return totals(self._db.execute(f"SELECT {TOTALS_SQL} FROM calls").fetchone())

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self._db.close()
