"""Contamination check: word n-gram overlap between generated questions and a benchmark's questions.

A generated question that shares most of its word n-grams with a benchmark item is likely a copy of
it (the writer model saw the benchmark in training, or a seed task came from it); training on it would
inflate that benchmark's scores. Questions shorter than n words are compared at their own length.

"Words" are :func:`autodata.analysis.similarity.tokens`: NFKC-normalised, case-folded word tokens in
scripts written with spaces, character bigrams in scripts written without (Chinese, Japanese, Thai…),
so a word-for-word copy of a benchmark item is found in any language.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from autodata.analysis.runs import write_json
from autodata.analysis.similarity import tokens
from autodata.errors import UserError
from autodata.example import Example

TEXT_FIELDS = ("question", "prompt", "problem", "input", "instruction", "text")


def load_benchmark(path: Path, field: str | None = None) -> list[str]:
    """Benchmark texts: JSONL (``field`` or the first of the usual ones), a JSON list, or one per line."""
    try:
        raw = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UserError(f"cannot read the benchmark {path}: {exc.strerror or exc}") from None
    rows: list[Any]
    if path.suffix == ".jsonl":
        try:
            rows = [json.loads(line) for line in raw.splitlines() if line.strip()]
        except ValueError as exc:
            raise UserError(f"{path}: not JSONL ({exc})") from None
    elif path.suffix == ".json":
        try:
            rows = json.loads(raw)
        except ValueError as exc:
            raise UserError(f"{path}: not JSON ({exc})") from None
        if not isinstance(rows, list):
            raise UserError(f"{path}: expected a JSON list of items")
    else:
        return [line for line in raw.splitlines() if line.strip()]
    texts = []
    for n, row in enumerate(rows, 1):
        if isinstance(row, str):
            texts.append(row)
            continue
        keys = [field] if field else [k for k in TEXT_FIELDS if isinstance(row, dict) and k in row]
        value = row.get(keys[0]) if isinstance(row, dict) and keys else None
        if not isinstance(value, str):
            wanted = field or " / ".join(TEXT_FIELDS)
            raise UserError(f"{path}: item {n} has no text field ({wanted}); pass --field")
        texts.append(value)
    if not texts:
        raise UserError(f"{path}: no benchmark items")
    return texts


def _grams(words: Sequence[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


class NgramIndex:
    """Every word n-gram of the benchmark, built per n on demand (short questions need smaller n)."""

    def __init__(self, texts: Iterable[str]) -> None:
        self._docs = [tokens(t) for t in texts]
        self._by_n: dict[int, set[tuple[str, ...]]] = {}

    def grams(self, n: int) -> set[tuple[str, ...]]:
        if n not in self._by_n:
            self._by_n[n] = set().union(*(_grams(d, n) for d in self._docs)) if self._docs else set()
        return self._by_n[n]


def overlap(question: str, index: NgramIndex, n: int) -> float:
    """Share of the question's word n-grams found in the benchmark (0 for an empty question)."""
    words = tokens(question)
    if not words:
        return 0.0
    size = min(n, len(words))
    grams = _grams(words, size)
    return len(grams & index.grams(size)) / len(grams)


def check(
    examples: Sequence[Example], benchmark: Sequence[str], *, n: int = 8, threshold: float = 0.5
) -> dict[str, Any]:
    index = NgramIndex(benchmark)
    rows = [{"id": e.id, "overlap": overlap(e.question, index, n)} for e in examples]
    flagged = [r for r in rows if r["overlap"] >= threshold]
    return {
        "ngram": n,
        "threshold": threshold,
        "benchmark_items": len(benchmark),
        "checked": len(rows),
        "flagged": len(flagged),
        "flagged_examples": sorted(flagged, key=lambda r: -r["overlap"]),
        "max_overlap": max((r["overlap"] for r in rows), default=0.0),
    }


def check_run(
    run_dir: Path, benchmark_path: Path, *, field: str | None = None, n: int = 8, threshold: float = 0.5
) -> dict[str, Any]:
    """Write ``contamination.json`` and a short block under ``contamination`` in ``summary.json``."""
    from autodata.analysis.runs import load_run

    if n < 1 or not 0 < threshold <= 1:
        raise UserError("--ngram must be >= 1 and --threshold in (0, 1]")
    run = load_run(run_dir)
    result = {
        "benchmark": str(benchmark_path),
        **check(run.examples, load_benchmark(benchmark_path, field), n=n, threshold=threshold),
    }
    write_json(run_dir / "contamination.json", result)
    run.summary["contamination"] = {
        k: result[k] for k in ("benchmark", "ngram", "threshold", "checked", "flagged", "max_overlap")
    } | {"flagged_ids": [r["id"] for r in result["flagged_examples"]]}
    write_json(run_dir / "summary.json", run.summary)
    from autodata.analysis.dedup import record_flags

    record_flags(
        run_dir,
        "contamination",
        scope=benchmark_path.name,
        params={"benchmark": str(benchmark_path), "ngram": n, "threshold": threshold, "field": field},
        checked=result["checked"],
        flagged=[
            (r["id"], f"{100 * r['overlap']:.0f}% of its {n}-grams are in {benchmark_path.name}", r)
            for r in result["flagged_examples"]
        ],
    )
    return result
