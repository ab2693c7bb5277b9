"""Data-set checks' verdicts on a run's examples: tables ``flag_checks`` and ``flags`` in ``run.db``.

``autodata contamination`` and ``autodata dedup`` each record one *check* (its kind, a scope such as
the benchmark's name, its parameters and time) and the examples it flagged, with the reason and a
detail (overlap, the kept duplicate). Rows are only ever appended, like the review log: running a
check again records a new check, and for each (kind, scope) only the latest check counts, so a
re-run with another threshold replaces the earlier verdict without erasing its history.

``autodata export`` reads the current flags: flagged examples are left out unless asked for
(``--include flagged``), and then carry their flags in a ``flags`` column.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS flag_checks (
    id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, scope TEXT NOT NULL,
    params TEXT NOT NULL, checked INTEGER NOT NULL, at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS flags (
    check_id INTEGER NOT NULL, example_id TEXT NOT NULL, reason TEXT NOT NULL, detail TEXT
);
CREATE INDEX IF NOT EXISTS flags_by_check ON flags (check_id);
"""

KINDS = ("contamination", "duplicate")


@dataclass(frozen=True, slots=True)
class Flag:
    """One current flag on one example: ``kind`` (contamination, duplicate), ``scope`` (e.g. the
    benchmark's file name; empty for dedup), ``reason`` in plain words and ``detail`` (a dict)."""

    example_id: str
    kind: str
    scope: str
    reason: str
    detail: dict[str, Any]
    check_id: int

    @property
    def label(self) -> str:
        """Short form for the export's ``flags`` column: ``contamination:bench.jsonl``, ``duplicate``."""
        return f"{self.kind}:{self.scope}" if self.scope else self.kind


class FlagLog:
    """Reads and appends check results on an open ``run.db`` connection (autocommit)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        db.executescript(_SCHEMA)

    def record_check(
        self,
        kind: str,
        *,
        scope: str = "",
        params: dict[str, Any] | None = None,
        checked: int,
        flagged: Iterable[tuple[str, str, dict[str, Any]]],
    ) -> int:
        """Append one check and its flagged examples ``(example_id, reason, detail)`` in one
        transaction; returns the check's id. ``checked`` is how many examples the check looked at.
        Raises ValueError for a kind not in ``KINDS``."""
        if kind not in KINDS:
            raise ValueError(f"unknown flag kind {kind!r}; expected one of {', '.join(KINDS)}")
        rows = list(flagged)
        self._db.execute("BEGIN IMMEDIATE")
        try:
            cur = self._db.execute(
                "INSERT INTO flag_checks (kind, scope, params, checked, at) VALUES (?, ?, ?, ?, ?)",
                (kind, scope, json.dumps(params or {}, sort_keys=True), checked, time.time()),
            )
            check_id = int(cur.lastrowid or 0)
            self._db.executemany(
                "INSERT INTO flags (check_id, example_id, reason, detail) VALUES (?, ?, ?, ?)",
                [(check_id, ex, reason, json.dumps(detail, ensure_ascii=False)) for ex, reason, detail in rows],
            )
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")
        return check_id

    def checks(self) -> list[dict[str, Any]]:
        """The latest check of each (kind, scope): what is in force, oldest first."""
        rows = self._db.execute(
            "SELECT id, kind, scope, params, checked, at FROM flag_checks WHERE id IN "
            "(SELECT MAX(id) FROM flag_checks GROUP BY kind, scope) ORDER BY id"
        ).fetchall()
        return [
            {"id": r[0], "kind": r[1], "scope": r[2], "params": json.loads(r[3]), "checked": r[4], "at": r[5]}
            for r in rows
        ]

    def current(self) -> dict[str, list[Flag]]:
        """Example id -> its flags from the checks in force."""
        live = {c["id"]: c for c in self.checks()}
        out: dict[str, list[Flag]] = {}
        if not live:
            return out
        marks = ",".join("?" * len(live))
        rows = self._db.execute(
            f"SELECT check_id, example_id, reason, detail FROM flags WHERE check_id IN ({marks}) ORDER BY rowid",
            tuple(live),
        ).fetchall()
        for check_id, example_id, reason, detail in rows:
            c = live[check_id]
            out.setdefault(example_id, []).append(
                Flag(example_id, c["kind"], c["scope"], reason, json.loads(detail) if detail else {}, check_id)
            )
        return out


def flag_counts(log: FlagLog) -> dict[str, int]:
    """Flag kind -> examples carrying it under the checks in force."""
    counts: dict[str, int] = {}
    for flags in log.current().values():
        for kind in {f.kind for f in flags}:
            counts[kind] = counts.get(kind, 0) + 1
    return dict(sorted(counts.items()))
