"""The corpus reader's speed and heap with its duplicate index in SQLite, against the same index as a dict.

    python bench/reader.py [--docs 100000] [--repeats 3] [--ids 1000000]

Reads JSONL corpora with ``load_documents`` (ids, duplicate skips and all), alternating two duplicate
indexes in one process, so a change in the machine's load falls on both:

- ``sqlite``: the reader as it is (``documents/seen.py``: a scratch SQLite file next to the run);
- ``heap``: the same reader with the index a dict of id -> source of the first copy on the Python heap
  (how it was kept before), put in ``SeenIndex``'s place.

Corpora: ``--docs`` small documents (``bench/memory.py``'s, about 500 characters), all distinct and with
5 % of the lines copies of recent ones; and a quarter as many documents of about 5,000 characters
(600 words), 5 % copies. For each it prints documents a second with each index (median of
``--repeats``), their ratio sqlite / heap, and the Python heap the reader holds per document read
(``tracemalloc``, a separate pass over the first 20,000 documents): the part that grows with the
corpus. Both indexes must yield the same items in the same order, or the script fails. Then the
index alone over ``--ids`` ids (no reading): microseconds a document for each, the cost at a corpus
size whose index no longer fits SQLite's page cache. The last line: ``ratio R1 R2`` (small documents
with copies, 5 KB documents), the reader's speed with the SQLite index over its speed with the dict.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

from autodata.documents import Document, load_documents, sources
from autodata.documents.seen import SeenIndex

sys.path.insert(0, str(Path(__file__).resolve().parent))
from memory import WORDS

HEAP_DOCS = 20_000


class HeapIndex:
    """The duplicate index as a dict of document id -> source of its first copy (SeenIndex's interface)."""

    def __init__(self, directory: object = None) -> None:
        self.seen: dict[str, str] = {}

    def first_copies(self, batch: list[tuple[str, str]]) -> list[str | None]:
        out: list[str | None] = []
        for doc_id, source in batch:
            first = self.seen.get(doc_id)
            if first is None:
                self.seen[doc_id] = source
            out.append(first)
        return out

    def close(self) -> None:
        self.seen = {}


INDEXES = {"heap": HeapIndex, "sqlite": SeenIndex}


def write_corpus(path: Path, n: int, words: int, dup_rate: float) -> None:
    rng = random.Random(n)
    lines: list[str] = []
    with path.open("w") as fh:
        for i in range(n):
            if lines and rng.random() < dup_rate:
                line = rng.choice(lines[-5000:])  # a copy of a recent line, as in a scraped corpus
            else:
                body = " ".join(rng.choice(WORDS) for _ in range(words))
                line = json.dumps({"id": f"d{i}", "title": f"Document {i}", "text": f"Study {i}. {body}."}) + "\n"
                lines.append(line)
            fh.write(line)


def read(path: Path, index: type, where: Path) -> tuple[float, list[tuple[str, str, str]]]:
    """Seconds to read the corpus with ``index`` as the duplicate index, and what was yielded."""
    sources.SeenIndex = index  # type: ignore[misc]
    try:
        started = time.perf_counter()
        items = [
            (type(x).__name__, x.id if isinstance(x, Document) else x.reason, x.source)
            for x in load_documents([path], min_chars=50, index_dir=where)
        ]
        return time.perf_counter() - started, items
    finally:
        sources.SeenIndex = SeenIndex  # type: ignore[misc]


def heap_per_document(path: Path, index: type, where: Path) -> float:
    """Bytes of Python heap the reader holds, per document, from its 1,000th to its HEAP_DOCS-th document."""
    sources.SeenIndex = index  # type: ignore[misc]
    tracemalloc.start()
    try:
        reader = load_documents([path], min_chars=50, index_dir=where)
        held = {}
        for n, _ in enumerate(reader, 1):
            if n in (1000, HEAP_DOCS):
                held[n] = tracemalloc.get_traced_memory()[0]
            if n == HEAP_DOCS:
                break
        reader.close()
        return (held[HEAP_DOCS] - held[1000]) / (HEAP_DOCS - 1000)
    finally:
        tracemalloc.stop()
        sources.SeenIndex = SeenIndex  # type: ignore[misc]


def index_alone(n: int, where: Path) -> dict[str, float]:
    """Microseconds a document for each index over ``n`` distinct ids in batches of ``sources.BATCH``."""
    ids = ["doc-" + hashlib.sha256(str(i).encode()).hexdigest()[:16] for i in range(n)]
    out = {}
    for name, index in INDEXES.items():
        ix = index(where)
        started = time.perf_counter()
        for k in range(0, n, sources.BATCH):
            ix.first_copies(
                [(ids[i], f"/data/corpus/part-0001.jsonl:{i + 1}") for i in range(k, min(n, k + sources.BATCH))]
            )
        out[name] = (time.perf_counter() - started) / n * 1e6
        ix.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=100_000, help="small documents in each small corpus")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--ids", type=int, default=1_000_000, help="ids for the index alone (0: skip)")
    args = ap.parse_args()
    print(f"{'corpus':<34}{'heap docs/s':>12}{'sqlite docs/s':>14}{'ratio':>7}{'heap B/doc':>12}{'sqlite B/doc':>13}")
    ratios = []
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        for n, words, dup_rate in ((args.docs, 60, 0.0), (args.docs, 60, 0.05), (args.docs // 4, 600, 0.05)):
            path = t / f"corpus-{words}-{dup_rate}.jsonl"
            write_corpus(path, n, words, dup_rate)
            secs: dict[str, list[float]] = {name: [] for name in INDEXES}
            got = {}
            for _ in range(args.repeats):
                for name, index in INDEXES.items():
                    s, got[name] = read(path, index, t)
                    secs[name].append(s)
            if got["heap"] != got["sqlite"]:
                raise SystemExit("the two indexes yielded different items")
            dups = sum(1 for _, what, _ in got["sqlite"] if what == "duplicate")
            rate = {name: n / statistics.median(s) for name, s in secs.items()}
            heap = {name: heap_per_document(path, index, t) for name, index in INDEXES.items()}
            ratio = rate["sqlite"] / rate["heap"]
            if dup_rate:
                ratios.append(ratio)
            label = f"{n:,} x {words * 8 // 1000 or 0.5} KB, {dups:,} copies"
            speed = f"{rate['heap']:>12,.0f}{rate['sqlite']:>14,.0f}{ratio:>7.2f}"
            print(f"{label:<34}{speed}{heap['heap']:>12.1f}{heap['sqlite']:>13.1f}", flush=True)
        if args.ids:
            us = index_alone(args.ids, t)
            print(f"index alone, {args.ids:,} ids: heap {us['heap']:.1f} us/doc, sqlite {us['sqlite']:.1f} us/doc")
    print(f"ratio {ratios[0]:.2f} {ratios[1]:.2f}")


if __name__ == "__main__":
    main()
