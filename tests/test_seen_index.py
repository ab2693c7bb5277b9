"""The corpus reader's duplicate index lives in SQLite, not on the Python heap (issue 17: memory stays bounded).

A duplicate anywhere in the corpus is still skipped naming its first copy, in the same order with the
same ids, whether the reader decides one document at a time or in batches; the reader's heap does not
grow with the number of documents read; a run killed mid-way and resumed skips the same duplicates.
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest

from autodata.documents import Document, Skipped, document_id, load_documents, sources
from autodata.documents.readers import Raw
from autodata.documents.seen import INDEX_NAME, SeenIndex, id_number
from autodata.errors import UserError
from conftest import kill_after_documents

ROOT = Path(__file__).resolve().parents[1]
WORDS = ["gradient", "tensor", "kernel", "lattice", "entropy", "protocol", "latency", "sampler", "estimator"]


def text(rng: random.Random, i: int) -> str:
    return f"Study {i}. " + " ".join(rng.choice(WORDS) for _ in range(40)) + "."


def corpus(path: Path, n: int, seed: int = 0) -> list[str]:
    """n JSONL lines: distinct documents, copies of earlier lines (near and far), empty and short texts."""
    rng = random.Random(seed)
    lines: list[str] = []
    for i in range(n):
        roll = rng.random()
        if lines and roll < 0.25:
            line = rng.choice(lines)  # a copy of any earlier line
        elif lines and roll < 0.3:
            line = lines[-1]  # a copy of the line just before (same batch)
        elif roll < 0.33:
            line = json.dumps({"text": "   "})
        elif roll < 0.36:
            line = json.dumps({"text": "short"})
        else:
            line = json.dumps({"title": f"T{i}", "text": text(rng, i)})
        lines.append(line)
    path.write_text("\n".join(lines) + "\n")
    return lines


class DictIndex:
    """The index as a dict on the heap (how the reader kept it before): the reference behaviour."""

    def __init__(self, directory: object = None) -> None:
        self.seen: dict[str, str] = {}

    def first_copies(self, batch):
        out = []
        for doc_id, source in batch:
            first = self.seen.get(doc_id)
            if first is None:
                self.seen[doc_id] = source
            out.append(first)
        return out

    def close(self) -> None:
        pass


def as_rows(items) -> list[tuple]:
    return [
        ("doc", x.id, x.source, x.title, x.text) if isinstance(x, Document) else ("skip", x.source, x.reason, x.detail)
        for x in items
    ]


@pytest.mark.parametrize("batch", [1, 3, 256])
def test_duplicates_are_skipped_naming_the_first_copy_as_one_by_one_with_a_dict(tmp_path, monkeypatch, batch):
    """Any batch size gives what the dict read one document at a time gives: same items, order, ids, reasons.
    The corpus is read twice in one call (the same file named twice), so every document of the second
    reading is a duplicate of the first, named with its line."""
    path = tmp_path / "c.jsonl"
    corpus(path, 400)
    monkeypatch.setattr(sources, "BATCH", 1)
    monkeypatch.setattr(sources, "SeenIndex", DictIndex)
    reference = as_rows(load_documents([path, path], min_chars=20))
    monkeypatch.setattr(sources, "BATCH", batch)
    monkeypatch.setattr(sources, "SeenIndex", SeenIndex)
    got = as_rows(load_documents([path, path], min_chars=20, index_dir=tmp_path))
    assert got == reference
    reasons = [r[2] for r in got if r[0] == "skip"]
    assert reasons.count("duplicate") > 200 and "empty" in reasons and "too_short" in reasons
    second = got[len(got) // 2 :]  # the file's second reading: each document's first copy is in the first
    assert all(row[0] == "skip" for row in second)
    assert all(row[3].startswith(f"same text as {path}:") for row in second if row[2] == "duplicate")
    assert not (tmp_path / INDEX_NAME).exists()  # removed when the read ended


def test_a_small_corpus_names_each_first_copy(tmp_path):
    a = "alpha " * 40
    b = "beta " * 40
    (tmp_path / "d.jsonl").write_text("\n".join(json.dumps({"text": t}) for t in (a, b, a, " " + b + "\n", a)) + "\n")
    (tmp_path / "e.txt").write_text(b)
    items = list(load_documents([tmp_path], min_chars=20))
    src = str(tmp_path / "d.jsonl")
    assert [type(x).__name__ for x in items] == ["Document", "Document", "Skipped", "Skipped", "Skipped", "Skipped"]
    assert items[0].id == document_id(a) and items[1].id == document_id(b)
    assert [x.detail for x in items[2:]] == [f"same text as {src}:1", f"same text as {src}:2"] + [
        f"same text as {src}:1",
        f"same text as {src}:2",
    ]


def test_the_readers_heap_stays_the_same_size_over_the_corpus(tmp_path):
    """The Python heap the reader holds does not grow with the documents read: 4,000 more documents
    add under 16 bytes each (the dict it replaces held about 190 bytes a document: ``bench/reader.py``)."""
    path = tmp_path / "c.jsonl"
    rng = random.Random(1)
    path.write_text("".join(json.dumps({"text": text(rng, i)}) + "\n" for i in range(6000)))
    tracemalloc.start()
    try:
        reader = load_documents([path], min_chars=20, index_dir=tmp_path)
        held = {}
        for n, item in enumerate(reader, 1):
            assert isinstance(item, Document)
            if n in (1000, 5000):
                held[n] = tracemalloc.get_traced_memory()[0]
        reader.close()
    finally:
        tracemalloc.stop()
    assert held[5000] - held[1000] < 16 * 4000, held
    # the documents are in the index's table (off the heap), one row each
    db = SeenIndex(tmp_path)
    try:
        assert db.first_copies([(document_id(text(random.Random(1), 0)), "x")]) == [None]
        assert len(db) == 1  # a new read starts an empty index
    finally:
        db.close()


def test_the_index_file_lives_in_the_run_directory_only_while_reading(tmp_path):
    path = tmp_path / "c.jsonl"
    corpus(path, 50)
    run = tmp_path / "run"
    run.mkdir()
    (run / INDEX_NAME).write_bytes(b"left by a killed read")  # replaced, never read
    reader = load_documents([path], min_chars=20, index_dir=run)
    next(reader)
    assert (run / INDEX_NAME).is_file()
    assert not (run / INDEX_NAME).read_bytes().startswith(b"left by")  # a new database, not the stale file
    reader.close()  # an early stop (a --limit, a stopped run) removes it too
    assert not (run / INDEX_NAME).exists()
    before = set(os.listdir(tmp_path))
    assert sum(1 for _ in load_documents([path], min_chars=20)) == 50  # no directory: SQLite's temporary database
    assert set(os.listdir(tmp_path)) == before


def test_what_was_read_before_a_reader_error_is_yielded_before_it(tmp_path, monkeypatch):
    def failing(path, opts):
        yield Raw(f"{path}:1", "a", "alpha " * 40, "jsonl")
        yield Raw(f"{path}:2", "a", "alpha " * 40, "jsonl")
        raise UserError("the stream broke")

    monkeypatch.setattr(sources, "read_file", failing)
    (tmp_path / "x.jsonl").write_text("")
    got = []
    with pytest.raises(UserError, match="the stream broke"):
        for item in load_documents([tmp_path / "x.jsonl"], min_chars=20, index_dir=tmp_path):
            got.append(item)
    assert isinstance(got[0], Document) and isinstance(got[1], Skipped) and got[1].reason == "duplicate"
    assert not (tmp_path / INDEX_NAME).exists()


def test_an_index_that_cannot_be_created_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="duplicate index"):
        list(load_documents([ROOT / "examples/corpus/peps"], index_dir=tmp_path / "missing"))


def test_id_number_is_one_to_one_on_document_ids():
    ids = [document_id(f"text {i}") for i in range(2000)] + ["doc-" + "0" * 16, "doc-" + "f" * 16]
    numbers = [id_number(i) for i in ids]
    assert len(set(numbers)) == len(set(ids))
    assert all(-(1 << 63) <= n < (1 << 63) for n in numbers)  # a SQLite integer
    for bad in ("doc-123", "abc-0123456789abcdef", "doc-0123456789abcdeg"):
        with pytest.raises(ValueError):
            id_number(bad)


def dup_corpus(path: Path) -> None:
    """14 distinct documents and 7 copies, spread so some are read before a kill and some after."""
    rng = random.Random(3)
    texts = [text(rng, i) for i in range(14)]
    order = [0, 1, 0, 2, 3, 1, 4, 5, 6, 2, 7, 8, 9, 10, 5, 11, 12, 13, 9, 0, 13]
    path.write_text("".join(json.dumps({"title": f"T{i}", "text": texts[i]}) + "\n" for i in order))


def run_args(cfg_out: Path, docs: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "autodata",
        "run",
        "examples/quickstart.yaml",
        "--out",
        str(cfg_out),
        "-q",
        "--set",
        f"documents.paths=[{docs}]",
        "--set",
        "documents.min_chars=50",
        "--set",
        "loop.max_rounds=1",
        "--set",
        "loop.concurrency=2",
        "--set",
        "models.weak.simulation.latency_ms=40",
        "--set",
        "models.strong.simulation.latency_ms=40",
    ]


def stored(out: Path) -> tuple[list, list]:
    con = sqlite3.connect(out / "run.db")
    try:
        docs = con.execute("SELECT id, seq, source FROM documents ORDER BY seq").fetchall()
        skipped = con.execute("SELECT source, reason, detail FROM skipped ORDER BY source").fetchall()
    finally:
        con.close()
    return docs, skipped


@pytest.mark.timeout(400)
def test_a_killed_and_resumed_run_skips_the_same_duplicates(tmp_path):
    docs = tmp_path / "docs.jsonl"
    dup_corpus(docs)
    out = tmp_path / "killed"
    env = {**os.environ, "AUTODATA_CACHE_DIR": str(tmp_path / "cache-a")}
    proc = subprocess.Popen(run_args(out, docs), cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    done = kill_after_documents(proc, out / "run.db", 2, seconds=180)
    assert 2 <= done < 14
    assert (out / INDEX_NAME).is_file()  # the killed session's index, left behind: the next one replaces it
    res = subprocess.run(run_args(out, docs), cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert not (out / INDEX_NAME).exists()
    ref = tmp_path / "reference"
    env_b = {**os.environ, "AUTODATA_CACHE_DIR": str(tmp_path / "cache-b")}
    res = subprocess.run(run_args(ref, docs), cwd=ROOT, env=env_b, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    killed_docs, killed_skips = stored(out)
    ref_docs, ref_skips = stored(ref)
    assert killed_docs == ref_docs and len(ref_docs) == 14
    assert killed_skips == ref_skips and len(ref_skips) == 7
    assert all(reason == "duplicate" and detail.startswith(f"same text as {docs}:") for _, reason, detail in ref_skips)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["documents"]["skipped"] == {"duplicate": 7} and summary["sessions"] == 2


def test_a_reader_begun_on_one_thread_can_be_finished_on_another(tmp_path):
    import threading

    path = tmp_path / "c.jsonl"
    corpus(path, 600)
    reader = load_documents([path], min_chars=20, index_dir=tmp_path)
    first = next(reader)
    rest: list = []
    worker = threading.Thread(target=lambda: (rest.extend(reader), reader.close()))
    worker.start()
    worker.join(timeout=60)
    assert rest and len(rest) + 1 == 600 and isinstance(first, Document | Skipped)
    assert not (tmp_path / INDEX_NAME).exists()


def test_a_run_whose_out_is_inside_the_corpus_folder_never_reads_its_own_outputs(tmp_path):
    """`--out corpus/run` with `paths: [corpus]` read run/examples.jsonl back as documents (a config whose
    text_field matched an output column would have fed the run its own examples)."""
    corpus = tmp_path / "corpus"
    (corpus / "run" / "export").mkdir(parents=True)
    (corpus / "paper.txt").write_text("A harbour's tide tables, as read by the master each morning. " * 10)
    row = json.dumps({"text": "An example this run wrote, which must never come back as a document. " * 5})
    for name in ("run/examples.jsonl", "run/export/rl.jsonl"):
        (corpus / name).write_text(row + "\n")
    read = list(load_documents([corpus], index_dir=corpus / "run"))
    assert [d.source for d in read if isinstance(d, Document)] == [str(corpus / "paper.txt")]
    assert not [s for s in read if isinstance(s, Skipped)]
    globbed = list(load_documents([str(corpus / "**" / "*.*")], index_dir=corpus / "run"))
    assert [d.source for d in globbed if isinstance(d, Document)] == [str(corpus / "paper.txt")]
    everything = list(load_documents([corpus]))  # another command's reader (no run directory) reads all
    assert len([d for d in everything if isinstance(d, Document)]) == 2  # the two rows are one text
