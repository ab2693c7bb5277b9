"""The corpus reader's duplicate index: every document id read so far, with where its first copy was read.

A duplicate anywhere in a corpus is skipped naming its first copy, so the reader must remember one id
and one source (``path:line``) per document read: about 0.15 KB a document on the Python heap, 150 MB
for a million. Here that memory is a SQLite table instead (one row per distinct document: the id's 64
bits as the row's integer key, its order of reading, its source), in a scratch file the reader alone
uses and removes when it stops: ``DIR/.documents-seen.db`` when a run directory is given (``autodata
run`` holds that directory's lock, so no other writer shares the name), else SQLite's own temporary
database (a file in the system's temporary directory that SQLite deletes on close, even after a kill).

The index is rebuilt on every read of the corpus (a resumed run reads the corpus again from its start
and meets the same first copies), so it needs no durability: no journal, no sync, a batch of documents
a call (:meth:`SeenIndex.first_copies`) and a transaction every ``COMMIT_EVERY`` batches. The reader
with it reads 0.82-0.87 as many small (0.6 KB) documents a CPU second as with a dict, 0.98 as many
5 KB ones (``bench/reader.py`` prints the ratio; docs/performance.md). SQLite's page cache
(``CACHE_KIB``) is the memory it holds, the same for ten documents or ten million.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Sequence
from pathlib import Path

INDEX_NAME = ".documents-seen.db"
CACHE_KIB = 2048  # SQLite's page cache for the index (its default size): the index's memory, whatever the corpus
COMMIT_EVERY = 64  # batches a transaction holds (a commit writes the pages the batches changed)
_ID_PREFIX = "doc-"
_ID_HEX = 16
_PREFIX_LEN = len(_ID_PREFIX)
_SIGN = 1 << 63


def id_number(doc_id: str) -> int:
    """A document id (``doc-`` and 16 hex digits, :func:`~autodata.documents.model.document_id`) as the
    signed 64-bit integer SQLite keys its rows by: one-to-one, so two ids are equal exactly when their
    numbers are. Raises ValueError for a string of another form."""
    if len(doc_id) != len(_ID_PREFIX) + _ID_HEX or not doc_id.startswith(_ID_PREFIX):
        raise ValueError(f"not a document id: {doc_id!r}")
    return int(doc_id[len(_ID_PREFIX) :], 16) - _SIGN


class SeenIndex:
    """Which documents were read, in a SQLite table rather than a Python container.

    ``SeenIndex(directory)`` keeps its table in ``directory/.documents-seen.db`` (a file left there by a
    killed read is replaced); ``SeenIndex()`` in SQLite's temporary database. :meth:`close` removes
    it. Raises ``sqlite3.Error`` / ``OSError`` when the file cannot be created."""

    def __init__(self, directory: str | Path | None = None) -> None:
        self.path = Path(directory) / INDEX_NAME if directory is not None else None
        if self.path is not None:
            self._remove()  # a killed read's index: this read starts its own
        # a reader may be iterated, or closed by the garbage collector, on another thread than the one that
        # began it (a generator never runs on two at once)
        where = str(self.path) if self.path else ""
        self._db = sqlite3.connect(where, isolation_level=None, check_same_thread=False)
        for pragma in ("journal_mode=OFF", "synchronous=OFF", "locking_mode=EXCLUSIVE", f"cache_size=-{CACHE_KIB}"):
            self._db.execute(f"PRAGMA {pragma}")
        self._db.execute("CREATE TABLE seen (key INTEGER PRIMARY KEY, seq INTEGER NOT NULL, source TEXT NOT NULL)")
        self._read = 0  # documents passed to first_copies so far (the next one's seq)
        self._batches = 0

    def first_copies(self, batch: Sequence[tuple[str, str]]) -> list[str | None]:
        """For each ``(document id, source)`` of ``batch``, in the order read: None when it is the first
        copy of its id (it is recorded now), else the source of the first copy, read in this batch or
        an earlier one. Ids are :func:`~autodata.documents.model.document_id`'s (:func:`id_number`). An
        insert per distinct id of the batch, and a lookup only when some id was recorded before; a
        transaction spans ``COMMIT_EVERY`` batches (reads see its rows before the commit)."""
        if not batch:
            return []
        n = len(batch)
        keys = [int(doc_id[_PREFIX_LEN:], 16) - _SIGN for doc_id, _ in batch]  # id_number, inlined: per document
        distinct = len(set(keys)) == n
        if distinct:  # the usual batch: no id twice in it
            rows = list(zip(keys, range(self._read, self._read + n), (source for _, source in batch), strict=True))
        else:
            first_at: dict[int, int] = {}  # key -> its first position in this batch
            rows = []
            for pos, key in enumerate(keys):
                if key not in first_at:
                    first_at[key] = pos
                    rows.append((key, self._read + pos, batch[pos][1]))
        db = self._db
        if not db.in_transaction:
            db.execute("BEGIN")  # no journal: after an error here the index is only fit to be closed
        before = db.total_changes
        db.executemany("INSERT OR IGNORE INTO seen (key, seq, source) VALUES (?, ?, ?)", rows)
        earlier: dict[int, str] = {}
        if db.total_changes - before != len(rows):  # some ids were read before this batch
            marks = ",".join("?" * len(rows))
            sql = f"SELECT key, source FROM seen WHERE key IN ({marks}) AND seq < ?"
            earlier = dict(db.execute(sql, [r[0] for r in rows] + [self._read]).fetchall())
        self._read += n
        self._batches += 1
        if self._batches % COMMIT_EVERY == 0:
            db.execute("COMMIT")
        if distinct and not earlier:
            return [None] * n
        out: list[str | None] = []
        for pos, key in enumerate(keys):
            if key in earlier:
                out.append(earlier[key])
            elif not distinct and first_at[key] != pos:
                out.append(batch[first_at[key]][1])
            else:
                out.append(None)
        return out

    def __len__(self) -> int:
        """Distinct documents recorded."""
        return int(self._db.execute("SELECT COUNT(*) FROM seen").fetchone()[0])

    def close(self) -> None:
        """Close the database (what was not committed is dropped: nobody reads it) and remove its file."""
        self._db.close()
        if self.path is not None:
            self._remove()

    def _remove(self) -> None:
        assert self.path is not None
        for suffix in ("", "-journal", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                Path(str(self.path) + suffix).unlink()
