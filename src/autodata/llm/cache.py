"""The content-addressed call cache: SQLite in WAL mode.

Why SQLite/WAL: readers never block the writer, many processes can share one file (each opens its
own connection; ``busy_timeout`` serialises writers), and every transaction is atomic, so a
``kill -9`` loses answers not yet committed, never the file. ``synchronous=NORMAL`` in WAL mode
skips the fsync per commit: an application crash cannot lose a committed answer, only a power cut
can lose the last few, which is an acceptable price for a cache.

Why a writer thread: a commit per answer on the event loop (and the occasional WAL checkpoint with
its fsync) stalls every request in flight behind it; in ``bench/e2e.py`` that cost about 3 % of
wall time. Answers are queued and committed in batches (every ``flush_s`` or ``batch`` answers,
whichever comes first) from a thread with its own connection; ``get`` looks at the queue first, so
an answer is visible the moment it is put. A ``kill -9`` loses at most the last ``flush_s`` of
answers, which a resumed run asks again.
"""

from __future__ import annotations

import atexit
import json
import logging
import sqlite3
import threading
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


log = logging.getLogger("autodata.cache")


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(str(path), timeout=60.0, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=60000")
    return conn


class CallCache:
    def __init__(self, path: str | Path, *, flush_s: float = 0.05, batch: int = 256) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = _connect(self.path)
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
        self.write_errors = 0  # answers that could not be committed (asked again by a later run)
        self.flush_s, self.batch = flush_s, batch
        self._pending: dict[str, tuple[str, float, str]] = {}  # key -> (model, created, JSON), not yet committed
        self._lock = threading.Lock()  # guards _pending; held only to swap or look up, never during I/O
        self._commit = threading.Lock()  # one batch at a time (the writer thread, or flush() from the owner)
        self._wake = threading.Event()
        self._stop = False
        self._writer: threading.Thread | None = None
        self._wconn: sqlite3.Connection | None = None

    def get(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            queued = self._pending.get(key)
        if queued is not None:
            self.hits += 1
            return json.loads(queued[2])
        row = self._conn.execute("SELECT value FROM calls WHERE key = ?", (key,)).fetchone()
        if row is None:
            self.misses += 1
            return None
        self.hits += 1
        return json.loads(row[0])

    def put(self, key: str, model: str, value: dict[str, Any]) -> None:
        blob = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        try:
            blob.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate a server's JSON may carry: store it escaped
            blob = json.dumps(value, ensure_ascii=True, separators=(",", ":"))
        with self._lock:
            if self._stop:  # a straggler after close(): nothing will commit it, so say so
                log.warning("call cache %s: closed; an answer for %s was not saved", self.path, model)
                return
            self._pending[key] = (model, time.time(), blob)
            full = len(self._pending) >= self.batch
            if self._writer is None:
                self._writer = threading.Thread(target=self._write_loop, name="autodata-cache-writer", daemon=True)
                self._writer.start()
                atexit.register(self.close)  # an owner that never closes still gets its answers committed
        if full:
            self._wake.set()

    def _write_loop(self) -> None:
        while not self._stop:
            self._wake.wait(self.flush_s)
            self._wake.clear()
            try:
                self.flush()
            except Exception:  # never let the writer die: later answers would only pile up in memory
                log.exception("call cache %s: the writer failed; it carries on", self.path)

    def flush(self) -> None:
        """Commit every queued answer; safe from any thread. Answers that cannot be written are dropped
        from the queue (logged and counted in ``write_errors``): a later run asks for them again."""
        with self._commit:
            with self._lock:
                if not self._pending:
                    return
                taken = list(self._pending.items())
            try:
                self._write([(k, m, created, blob) for k, (m, created, blob) in taken])
            finally:
                with self._lock:  # dropped from the queue only once committed (or given up): get() never misses
                    for k, entry in taken:
                        if self._pending.get(k) is entry:  # not replaced by a newer put meanwhile
                            del self._pending[k]

    def delete(self, key: str) -> None:
        """Forget ``key``'s answer (queued or committed): the next ask goes to the server. Waits for a batch
        being committed, so that batch cannot write the answer back after it is gone."""
        with self._commit:
            with self._lock:
                self._pending.pop(key, None)
            self._conn.execute("DELETE FROM calls WHERE key = ?", (key,))

    _INSERT = "INSERT OR REPLACE INTO calls (key, model, created, value) VALUES (?, ?, ?, ?)"

    def _write(self, rows: list[tuple[str, str, float, str]]) -> None:
        """One transaction for the batch; if a row broke it, one per row, so a bad answer costs only itself.

        An ``OperationalError`` (locked past the busy timeout, read-only, disk full, I/O) concerns the
        whole file: retrying row by row would only wait out the timeout once per row.
        """
        try:
            if self._wconn is None:
                self._wconn = _connect(self.path)
            with self._wconn:  # BEGIN ... COMMIT, ROLLBACK on error
                self._wconn.execute("BEGIN")
                self._wconn.executemany(self._INSERT, rows)
            return
        except Exception as exc:  # retried row by row below, then reported
            first: Exception = exc
        lost = 0
        whole_file = self._wconn is None or isinstance(first, sqlite3.OperationalError)
        for row in [] if whole_file else rows:
            try:
                assert self._wconn is not None
                with self._wconn:
                    self._wconn.execute("BEGIN")
                    self._wconn.execute(self._INSERT, row)
            except Exception as exc:
                lost += 1
                first = exc
        if whole_file:
            lost = len(rows)
        if lost:
            self.write_errors += lost
            log.warning("call cache %s: %d of %d answers not saved (%s); a later run asks for them again",
                        self.path, lost, len(rows), first)  # fmt: skip

    def count(self) -> int:
        self.flush()
        return int(self._conn.execute("SELECT COUNT(*) FROM calls").fetchone()[0])

    def stats(self) -> dict[str, Any]:
        self.flush()
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
        self.flush()
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        cur = self._conn.execute(f"DELETE FROM calls{where}", args)
        self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        if not clauses:
            self._conn.execute("VACUUM")
        return cur.rowcount

    def close(self) -> None:
        """Commit what is queued, stop the writer, close both connections. Safe to call twice."""
        with self._lock:
            self._stop = True
        atexit.unregister(self.close)
        self._wake.set()
        if self._writer is not None:
            self._writer.join(timeout=120)
            self._writer = None
        self.flush()
        for conn in (self._wconn, self._conn):
            if conn is None:
                continue
            try:
                conn.close()
            except sqlite3.Error:
                pass
        self._wconn = None
