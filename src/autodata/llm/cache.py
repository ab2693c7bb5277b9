"""The content-addressed call cache: SQLite in WAL mode.

Why SQLite/WAL: readers never block the writer, many processes can share one file (each opens its
own connection; ``busy_timeout`` serialises writers), and every insert is its own atomic
transaction, so a ``kill -9`` mid-write loses at most the answer being written, never the file.
``synchronous=NORMAL`` in WAL mode skips the fsync per commit: an application crash cannot lose a
committed answer, only a power cut can lose the last few, which is an acceptable price for a cache.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

from autodata.errors import UserError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS calls (
    key     TEXT PRIMARY KEY,
    model   TEXT NOT NULL,
    created REAL NOT NULL,
    value   TEXT NOT NULL
) WITHOUT ROWID;
"""


class CallCache:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(str(self.path), timeout=60.0, isolation_level=None, check_same_thread=False)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute("PRAGMA busy_timeout=60000")
            self._conn.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise UserError(
                f"cannot open the call cache {self.path}: {exc}. "
                "Remove the file (`autodata cache clear --all`) or point cache.path elsewhere."
            ) from None
        except OSError as exc:
            raise UserError(f"cannot create the call cache at {self.path}: {exc}") from None
        self.hits = 0
        self.misses = 0

    def get(self, key: str) -> dict[str, Any] | None:
        row = self._conn.execute("SELECT value FROM calls WHERE key = ?", (key,)).fetchone()
        if row is None:
            self.misses += 1
            return None
        self.hits += 1
        return json.loads(row[0])

    def put(self, key: str, model: str, value: dict[str, Any]) -> None:
        blob = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        self._conn.execute(
            "INSERT OR REPLACE INTO calls (key, model, created, value) VALUES (?, ?, ?, ?)",
            (key, model, time.time(), blob),
        )

    def count(self) -> int:
        return int(self._conn.execute("SELECT COUNT(*) FROM calls").fetchone()[0])

    def stats(self) -> dict[str, Any]:
        rows = self._conn.execute(
            "SELECT model, COUNT(*), MIN(created), MAX(created) FROM calls GROUP BY model ORDER BY model"
        ).fetchall()
        size = sum(p.stat().st_size for p in self.path.parent.glob(self.path.name + "*") if p.is_file())
        return {
            "path": str(self.path),
            "entries": sum(r[1] for r in rows),
            "bytes": size,
            "models": {r[0]: {"entries": r[1], "oldest": r[2], "newest": r[3]} for r in rows},
        }

    def clear(self, model: str | None = None, older_than_s: float | None = None) -> int:
        clauses, args = [], []
        if model is not None:
            clauses.append("model = ?")
            args.append(model)
        if older_than_s is not None:
            clauses.append("created < ?")
            args.append(time.time() - older_than_s)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        cur = self._conn.execute(f"DELETE FROM calls{where}", args)
        self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        if not clauses:
            self._conn.execute("VACUUM")
        return cur.rowcount

    def close(self) -> None:
        try:
            self._conn.close()
        except sqlite3.Error:
            pass
