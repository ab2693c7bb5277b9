"""The SQLite call cache: WAL, many writers, kill -9 mid-batch, clearing."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from autodata.llm.cache import CallCache


def test_wal_mode_and_roundtrip(tmp_path):
    c = CallCache(tmp_path / "c.sqlite")
    assert c._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert c.get("k") is None
    c.put("k", "m", {"text": "héllo", "usage": {"input_tokens": 1}})
    assert c.get("k") == {"text": "héllo", "usage": {"input_tokens": 1}}
    assert (c.hits, c.misses) == (1, 1)
    c.close()


def _writer(path: str, prefix: str, n: int) -> None:
    c = CallCache(path)
    for i in range(n):
        c.put(f"{prefix}-{i}", prefix, {"text": f"{prefix} answer {i}"})
    c.close()


def test_concurrent_writers_across_processes(tmp_path):
    path = str(tmp_path / "shared.sqlite")
    CallCache(path).close()
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(path, f"p{i}", 300)) for i in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    c = CallCache(path)
    assert c.count() == 1200
    assert c.get("p3-299") == {"text": "p3 answer 299"}
    stats = c.stats()
    assert stats["models"]["p0"]["entries"] == 300
    c.close()


def test_clear_by_model_and_all(tmp_path):
    c = CallCache(tmp_path / "c.sqlite")
    for i in range(5):
        c.put(f"a{i}", "a", {"t": i})
        c.put(f"b{i}", "b", {"t": i})
    assert c.clear(model="a") == 5
    assert c.count() == 5
    assert c.clear(older_than_s=3600) == 0
    assert c.clear() == 5
    assert c.count() == 0
    c.close()


def test_corrupt_cache_file_is_a_user_error(tmp_path):
    import pytest

    from autodata.errors import UserError

    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(b"this is not a database" * 100)
    with pytest.raises(UserError, match="cannot open the call cache"):
        CallCache(bad)


CONFIG = """
seed: 0
cache: {{path: {cache}}}
models:
  weak:
    provider: simulated
    model: sim-weak
    max_concurrency: 4
    simulation: {{latency_ms: 15, fault_rate: 0.0}}
"""


def _run_generate(cfg: Path, prompts: Path, out: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "autodata",
            "generate",
            str(cfg),
            "--input",
            str(prompts),
            "--out",
            str(out),
            "--model",
            "weak",
            "--quiet",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _cached(path: Path) -> int:
    try:
        conn = sqlite3.connect(str(path), timeout=5)
        try:
            return conn.execute("SELECT COUNT(*) FROM calls").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error:
        return 0


def test_kill_9_mid_batch_then_rerun_makes_only_missing_calls(tmp_path):
    cache = tmp_path / "calls.sqlite"
    cfg = tmp_path / "c.yaml"
    cfg.write_text(CONFIG.format(cache=cache))
    prompts = tmp_path / "prompts.jsonl"
    n = 240
    prompts.write_text(
        "".join(json.dumps({"id": f"p{i}", "prompt": f"Question {i} about generators"}) + "\n" for i in range(n))
    )
    proc = _run_generate(cfg, prompts, tmp_path / "out1")
    deadline = time.monotonic() + 60
    while _cached(cache) < 40 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
    assert proc.poll() is None, "the batch finished before it could be killed; make it slower"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    done_before = _cached(cache)
    assert 40 <= done_before < n

    proc = _run_generate(cfg, prompts, tmp_path / "out2")
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr
    summary = json.loads((tmp_path / "out2" / "summary.json").read_text())
    assert summary["completed"] == n
    assert summary["from_cache"] == done_before
    assert summary["usage"]["total"]["calls"] == n - done_before
    ids = [json.loads(line)["id"] for line in (tmp_path / "out2" / "completions.jsonl").open()]
    assert ids == [f"p{i}" for i in range(n)]  # input order, nothing lost, nothing twice
    assert _cached(cache) == n


def _committed(path: Path) -> int:
    conn = sqlite3.connect(str(path))
    try:
        return conn.execute("SELECT COUNT(*) FROM calls").fetchone()[0]
    finally:
        conn.close()


def test_answers_are_visible_at_once_and_committed_in_batches(tmp_path):
    path = tmp_path / "c.sqlite"
    c = CallCache(path, flush_s=3600, batch=10_000)  # the writer thread would wait an hour
    for i in range(50):
        c.put(f"k{i}", "m", {"t": i})
    assert c.get("k49") == {"t": 49}  # from the queue, before any commit
    assert _committed(path) == 0  # nothing written on the caller's thread
    c.flush()
    assert _committed(path) == 50
    assert c.get("k0") == {"t": 0}
    c.put("k0", "m", {"t": "newer"})  # replaced while queued: the newer answer wins once committed
    c.close()
    c = CallCache(path)
    assert c.get("k0") == {"t": "newer"}
    assert c.count() == 50
    c.close()


def test_a_full_batch_wakes_the_writer(tmp_path):
    path = tmp_path / "c.sqlite"
    c = CallCache(path, flush_s=3600, batch=20)
    for i in range(20):
        c.put(f"k{i}", "m", {"t": i})
    deadline = time.monotonic() + 10
    while _committed(path) < 20 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _committed(path) == 20
    c.close()


def test_close_commits_what_is_queued(tmp_path):
    path = tmp_path / "c.sqlite"
    c = CallCache(path, flush_s=3600)
    c.put("a", "m", {"t": 1})
    c.close()
    assert _committed(path) == 1


def test_a_failed_commit_is_counted_and_logged_not_raised(tmp_path, caplog):
    path = tmp_path / "c.sqlite"
    c = CallCache(path, flush_s=3600)
    c.put("a", "m", {"t": 1})
    c._wconn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)  # a disk that refuses writes
    with caplog.at_level("WARNING", logger="autodata.cache"):
        c.flush()
    assert c.write_errors == 1
    assert "1 of 1 answers not saved" in caplog.text
    assert c.get("a") is None  # given up: asked again, never served from a queue that will not be written
    c._wconn.close()
    c._wconn = None
    c.close()


class _Hooked(sqlite3.Connection):
    """A writer connection with a hook before each statement (sqlite3's own type cannot be patched)."""

    before_many = None
    refuse = None  # a row value the single-row insert rejects, as a bad answer would be

    def executemany(self, sql, rows):
        rows = list(rows)
        if self.before_many:
            self.before_many()
        if self.refuse and any(self.refuse in r[3] for r in rows):
            raise ValueError("this batch holds a row the database refuses")
        return super().executemany(sql, rows)

    def execute(self, sql, *args):
        if self.refuse and args and self.refuse in args[0][3]:
            raise ValueError("refused row")
        return super().execute(sql, *args)


def _hooked(path: Path) -> _Hooked:
    return sqlite3.connect(str(path), isolation_level=None, factory=_Hooked, check_same_thread=False)


def test_an_answer_replaced_during_its_commit_keeps_the_newer_value(tmp_path):
    path = tmp_path / "c.sqlite"
    c = CallCache(path, flush_s=3600)
    c.put("k", "m", {"t": "old"})
    c._wconn = _hooked(path)
    c._wconn.before_many = lambda: c.put("k", "m", {"t": "new"})  # lands while "old" is being committed
    c.flush()
    assert c.get("k") == {"t": "new"}  # still queued: the commit of "old" must not drop it
    c._wconn.before_many = None
    c.close()
    c = CallCache(path)
    assert c.get("k") == {"t": "new"}
    c.close()


def test_one_bad_answer_costs_only_itself_and_the_writer_survives(tmp_path, caplog):
    path = tmp_path / "c.sqlite"
    c = CallCache(path, flush_s=0.01)
    c._wconn = _hooked(path)
    c._wconn.refuse = "poison"
    with caplog.at_level("WARNING", logger="autodata.cache"):
        for i in range(5):
            c.put(f"k{i}", "m", {"t": "poison" if i == 2 else i})
        deadline = time.monotonic() + 10
        # the writer saves the good rows, then counts the refused one: wait for both (a loaded machine
        # can see the rows before the count)
        while (_committed(path) < 4 or c.write_errors < 1) and time.monotonic() < deadline:
            time.sleep(0.01)
    assert _committed(path) == 4 and c.write_errors == 1
    assert "1 of 5 answers not saved" in caplog.text
    assert c._writer is not None and c._writer.is_alive()
    c.put("after", "m", {"t": "still written"})
    c.close()
    c = CallCache(path)
    assert c.get("after") == {"t": "still written"} and c.get("k2") is None
    c.close()


def test_a_lone_surrogate_from_a_server_is_stored_escaped(tmp_path):
    path = tmp_path / "c.sqlite"
    c = CallCache(path)
    odd = json.loads('"broken emoji \\ud83d"')  # valid JSON, not encodable as UTF-8
    c.put("s", "m", {"text": odd})
    c.close()
    c = CallCache(path)
    assert c.get("s") == {"text": odd}
    c.close()


def test_a_put_after_close_is_reported_not_lost_silently(tmp_path, caplog):
    c = CallCache(tmp_path / "c.sqlite")
    c.close()
    with caplog.at_level("WARNING", logger="autodata.cache"):
        c.put("late", "m", {"t": 1})
    assert "closed; an answer for m was not saved" in caplog.text
    c.close()  # twice is fine


def test_delete_forgets_a_queued_and_a_committed_answer(tmp_path):
    """What the runtime uses to forget a structured answer without JSON from a real server (it ignored the
    schema): gone from the queue and from the file, so the next ask reaches the server."""
    cache = CallCache(tmp_path / "c.sqlite", flush_s=60)
    cache.put("queued", "m", {"text": "a"})
    cache.put("committed", "m", {"text": "b"})
    cache.flush()
    cache.put("queued", "m", {"text": "a2"})
    cache.delete("queued")
    cache.delete("committed")
    cache.delete("never-there")
    assert cache.get("queued") is None and cache.get("committed") is None
    cache.close()
    again = CallCache(tmp_path / "c.sqlite")
    assert again.count() == 0
    again.close()
