"""The run store: ``DIR/run.db``, SQLite in WAL mode, the single source of truth of a run.

A document's episode is written in one transaction together with its accepted example, so a crash
leaves every document either finished (episode and example stored) or not started in the store.
Resuming runs the unfinished ones again; with the call cache their completed steps replay without
new model calls, so nothing is lost and nothing is stored twice.
"""

from __future__ import annotations

import json
import sqlite3
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autodata.errors import UserError
from autodata.example import Example
from autodata.store.call_log import TOTALS_SQL, insert_calls, totals

if TYPE_CHECKING:
    from autodata.store.flags import FlagLog
    from autodata.store.reviews import ReviewLog

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS documents (
    id TEXT PRIMARY KEY, seq INTEGER NOT NULL, source TEXT NOT NULL, title TEXT NOT NULL,
    status TEXT NOT NULL, rounds INTEGER NOT NULL, finished REAL NOT NULL, episode TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS examples (
    id TEXT PRIMARY KEY, document_id TEXT NOT NULL UNIQUE, seq INTEGER NOT NULL, data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS skipped (source TEXT PRIMARY KEY, reason TEXT NOT NULL, detail TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS calls (
    session INTEGER, at REAL NOT NULL, document_id TEXT, endpoint TEXT NOT NULL, role TEXT NOT NULL,
    cache_hit INTEGER NOT NULL, input_tokens INTEGER NOT NULL, output_tokens INTEGER NOT NULL,
    cost_usd REAL NOT NULL, latency_s REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS calls_by_document ON calls (document_id);
CREATE TABLE IF NOT EXISTS sessions (
    started REAL NOT NULL, ended REAL, documents INTEGER NOT NULL DEFAULT 0, usage TEXT
);
CREATE TABLE IF NOT EXISTS document_texts (id TEXT PRIMARY KEY, text BLOB NOT NULL);
"""


class RunStore:
    def __init__(self, out_dir: str | Path) -> None:
        self.dir = Path(out_dir)
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            self.path = self.dir / "run.db"
            # the review app reads and writes from a thread pool; sqlite3 is built serialized (threadsafety 3)
            self._db = sqlite3.connect(str(self.path), timeout=60.0, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
            # the reviewers' table too, from the start: a reader (export, report) that opened a store
            # without it would create it, writing run.db, which a read must never do
            from autodata.store.reviews import _SCHEMA as REVIEWS_SCHEMA

            self._db.executescript(REVIEWS_SCHEMA)
            columns = {r[1] for r in self._db.execute("PRAGMA table_info(calls)")}
            if "estimated" not in columns:  # run directories written before the column existed
                self._db.execute("ALTER TABLE calls ADD COLUMN estimated INTEGER NOT NULL DEFAULT 0")
        except (OSError, sqlite3.DatabaseError) as exc:
            raise UserError(f"cannot open the run store in {self.dir}: {exc}") from None
        self._session: int | None = None

    @classmethod
    def open_existing(cls, run_dir: str | Path) -> RunStore:
        """A store that must already exist: commands that read a run never create an empty one."""
        if not (Path(run_dir) / "run.db").is_file():
            raise UserError(f"{run_dir} is not a run directory (no run.db)")
        return cls(run_dir)

    # ------------------------------------------------------------------ meta and recipe

    def get_meta(self, key: str) -> Any:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def set_meta(self, key: str, value: Any) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, json.dumps(value)))

    def check_recipe(self, recipe_hash: str, *, force: bool) -> str:
        """'new', 'same' or 'replaced'. A started run refuses another recipe unless forced."""
        old = self.get_meta("recipe_hash")
        if old is None:
            self.set_meta("recipe_hash", recipe_hash)
            return "new"
        if old == recipe_hash:
            return "same"
        if not force:
            raise UserError(
                f"{self.dir} was started with another recipe (config or prompts changed: {old} -> {recipe_hash}). "
                "Resume with the original config, use a new --out directory, or pass --force-new-recipe "
                "to continue with the new one (finished documents keep their old results)."
            )
        history = self.get_meta("recipe_history") or []
        self.set_meta("recipe_history", [*history, {"from": old, "to": recipe_hash, "at": time.time()}])
        self.set_meta("recipe_hash", recipe_hash)
        return "replaced"

    # ------------------------------------------------------------------ sessions

    def begin_session(self) -> None:
        cur = self._db.execute("INSERT INTO sessions (started) VALUES (?)", (time.time(),))
        self._session = cur.lastrowid

    def end_session(self, documents: int, usage: dict[str, Any]) -> None:
        if self._session is not None:
            self._db.execute(
                "UPDATE sessions SET ended = ?, documents = ?, usage = ? WHERE rowid = ?",
                (time.time(), documents, json.dumps(usage), self._session),
            )

    def sessions(self) -> list[dict[str, Any]]:
        rows = self._db.execute("SELECT started, ended, documents, usage FROM sessions ORDER BY rowid").fetchall()
        return [
            {"started": r[0], "ended": r[1], "documents": r[2], "usage": json.loads(r[3]) if r[3] else None}
            for r in rows
        ]

    # ------------------------------------------------------------------ documents

    def finished_ids(self) -> set[str]:
        """Every finished document's id, as a set: one Python string per document (the run driver asks
        :meth:`is_finished` instead, so a resumed run's memory does not grow with what it finished)."""
        return {r[0] for r in self._db.execute("SELECT id FROM documents")}

    def has_documents(self) -> bool:
        """Whether any document is finished (False for a new run)."""
        return self._db.execute("SELECT 1 FROM documents LIMIT 1").fetchone() is not None

    def is_finished(self, doc_id: str) -> bool:
        """Whether the document ``doc_id`` has its episode stored (one lookup by primary key)."""
        return self._db.execute("SELECT 1 FROM documents WHERE id = ?", (doc_id,)).fetchone() is not None

    def record_skipped(self, source: str, reason: str, detail: str) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO skipped (source, reason, detail) VALUES (?, ?, ?)", (source, reason, detail)
        )

    def record_episode(
        self,
        *,
        doc_id: str,
        seq: int,
        source: str,
        title: str,
        status: str,
        episode: dict[str, Any],
        example: Example | None,
        calls: list[dict[str, Any]] | None = None,
        text: str | None = None,
    ) -> None:
        """Episode, example and the episode's call log together, or none of them. ``text`` is the
        document as the challenger saw it, kept (compressed) so a reviewer can read the passage an
        example is grounded in; it sits beside the episode, not in it, like the call log."""
        with self._transaction():
            self._insert_calls(calls or [])
            self._db.execute(
                "INSERT OR REPLACE INTO documents (id, seq, source, title, status, rounds, finished, episode) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    doc_id,
                    seq,
                    source,
                    title,
                    status,
                    len(episode.get("rounds", [])),
                    time.time(),
                    json.dumps(episode, ensure_ascii=False),
                ),
            )
            if example is not None:
                self._db.execute(
                    "INSERT OR REPLACE INTO examples (id, document_id, seq, data) VALUES (?, ?, ?, ?)",
                    (example.id, doc_id, seq, json.dumps(example.stored(), ensure_ascii=False)),
                )
            if text is not None:
                self._db.execute(
                    "INSERT OR REPLACE INTO document_texts (id, text) VALUES (?, ?)",
                    (doc_id, zlib.compress(text.encode("utf-8"))),
                )

    def _insert_calls(self, calls: list[dict[str, Any]]) -> None:
        insert_calls(self._db, self._session, calls)

    def record_calls(self, calls: list[dict[str, Any]]) -> None:
        """Calls as they come back (the driver writes them every half second), and calls of documents
        that failed this session: the log holds every call a killed session made, up to the last write."""
        if calls:
            with self._transaction():
                self._insert_calls(calls)

    def _transaction(self) -> Any:
        db = self._db

        class _Tx:
            def __enter__(self) -> None:
                db.execute("BEGIN IMMEDIATE")

            def __exit__(self, exc_type: object, *rest: object) -> None:
                db.execute("ROLLBACK" if exc_type else "COMMIT")

        return _Tx()

    # ------------------------------------------------------------------ reading

    def examples(self) -> Iterator[Example]:
        """The stored examples in run order, typed; rows of an older format are migrated as they are
        read (``example.migrate``), the stored row is not changed."""
        for (data,) in self._db.execute("SELECT data FROM examples ORDER BY seq"):
            yield Example.load(json.loads(data))

    def episodes(self) -> Iterator[dict[str, Any]]:
        for (data,) in self._db.execute("SELECT episode FROM documents ORDER BY seq"):
            yield json.loads(data)

    def skipped(self) -> list[dict[str, str]]:
        rows = self._db.execute("SELECT source, reason, detail FROM skipped ORDER BY source").fetchall()
        return [{"source": r[0], "reason": r[1], "detail": r[2]} for r in rows]

    _DOC_SQL = (
        "SELECT d.id, d.seq, d.source, d.title, d.status, d.finished, d.episode, e.data FROM documents d "
        "LEFT JOIN examples e ON e.document_id = d.id"
    )

    @staticmethod
    def _doc_row(r: tuple[Any, ...]) -> dict[str, Any]:
        keys = ("id", "seq", "source", "title", "status", "finished")
        return {
            **dict(zip(keys, r[:6], strict=True)),
            "episode": json.loads(r[6]),
            "example": Example.load(json.loads(r[7])) if r[7] else None,
        }

    def documents_since(self, finished: float) -> list[dict[str, Any]]:
        """Documents finished at or after ``finished`` (a time), with their example: lets a reader of a
        run still in progress pick up only what is new."""
        rows = self._db.execute(self._DOC_SQL + " WHERE d.finished >= ? ORDER BY d.finished", (finished,)).fetchall()
        return [self._doc_row(r) for r in rows]

    def document(self, doc_id: str) -> dict[str, Any] | None:
        """One finished document with its episode and example (as ``documents_since`` gives them:
        ``id``, ``seq``, ``source``, ``title``, ``status``, ``finished``, ``episode``, ``example`` an
        :class:`~autodata.example.Example` or None)."""
        row = self._db.execute(self._DOC_SQL + " WHERE d.id = ?", (doc_id,)).fetchone()
        return None if row is None else self._doc_row(row)

    def document_text(self, doc_id: str) -> str | None:
        row = self._db.execute("SELECT text FROM document_texts WHERE id = ?", (doc_id,)).fetchone()
        return None if row is None else zlib.decompress(row[0]).decode("utf-8")

    def usage_by_document(self, doc_id: str | None = None) -> dict[str, dict[str, dict[str, float]]]:
        """What each document cost, by role, from the call log (every session's calls for it)."""
        sql = (
            "SELECT document_id, role, SUM(1 - cache_hit), SUM(cache_hit), SUM(input_tokens), SUM(output_tokens), "
            "SUM(cost_usd) FROM calls WHERE document_id IS NOT NULL"
        )
        args: tuple[Any, ...] = ()
        if doc_id is not None:
            sql, args = sql + " AND document_id = ?", (doc_id,)
        out: dict[str, dict[str, dict[str, float]]] = {}
        for doc, role, calls, hits, tin, tout, cost in self._db.execute(sql + " GROUP BY document_id, role", args):
            out.setdefault(doc, {})[role] = {
                "calls": calls,
                "cache_hits": hits,
                "input_tokens": tin,
                "output_tokens": tout,
                "cost_usd": cost,
            }
        return out

    def query(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Rows of a read-only query (for readers that sum over the tables, e.g. ``store/costs.py``)."""
        return self._db.execute(sql, args).fetchall()

    def reviews(self) -> ReviewLog:
        """The reviewers' decisions on this run's examples (table ``reviews`` in the same file)."""
        from autodata.store.reviews import ReviewLog

        return ReviewLog(self._db)

    def call_totals(self) -> dict[str, dict[str, float]]:
        """Calls, cache hits, tokens and cost by role, over every session, from the call log.

        The only source of a summary's usage: a session killed with ``kill -9`` never reports its
        usage itself, but every call it made is in the log (written as the calls come back). Tokens
        and cost count calls made (a cache hit row carries the usage it once cost, not counted);
        ``estimated`` counts calls whose server sent no usage (tokens estimated, when the caller
        says so)."""
        rows = self._db.execute(f"SELECT role, {TOTALS_SQL} FROM calls GROUP BY role ORDER BY role")
        return {role: totals(rest) for role, *rest in rows}

    def flags(self) -> FlagLog:
        """The data-set checks' flags on this run's examples (tables ``flag_checks``, ``flags``)."""
        from autodata.store.flags import FlagLog

        return FlagLog(self._db)

    def status_counts(self) -> dict[str, int]:
        return dict(self._db.execute("SELECT status, COUNT(*) FROM documents GROUP BY status").fetchall())

    def close(self) -> None:
        self._db.close()
