"""``autodata dedup``: near-duplicate clusters, keep the best example of each, drop the rest, say why.

Nothing is destroyed: ``examples.jsonl`` stays as it is; the kept examples go to
``examples.dedup.jsonl`` and every cluster (kept id, dropped ids, similarity to the kept one, reason)
to ``dedup.json``. Compare and export tools can read either file.

"Best" is decided in this order: meets the acceptance predicate, larger gap, higher strong mean,
earlier in the file. The acceptance predicate decides first because a duplicate that the predicate
rejected is the one the user would drop by hand.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from autodata.analysis.runs import read_examples, task_text, write_json
from autodata.analysis.similarity import Pair, clusters, jaccard, near_duplicate_pairs, shingles
from autodata.errors import UserError
from autodata.example import Example
from autodata.store.files import atomic_jsonl

DEDUP_FILE = "examples.dedup.jsonl"
Similarity = Callable[[int, int], float]
Detector = Callable[[Sequence[str]], tuple[Sequence[Pair], Similarity]]


def rank_key(example: Example, position: int) -> tuple[Any, ...]:
    """Smaller is better."""
    strong = example.strong.mean
    gap = example.gap
    return (
        not example.passes,  # the loop's examples all met it
        -(gap if gap is not None else -1.0),
        -(strong if strong is not None else -1.0),
        position,
    )


def plan(
    examples: Sequence[Example],
    pairs: Sequence[Pair],
    *,
    similarity: Similarity,
) -> tuple[list[int], list[dict[str, Any]]]:
    """(indices kept in file order, one record per cluster)."""
    dropped: set[int] = set()
    report: list[dict[str, Any]] = []
    for group in clusters(len(examples), pairs):
        best = min(group, key=lambda i: rank_key(examples[i], i))
        rest = [i for i in group if i != best]
        dropped.update(rest)
        report.append(
            {
                "kept": examples[best].id,
                "dropped": [
                    {
                        "id": examples[i].id,
                        "similarity_to_kept": round(similarity(i, best), 4),
                        "reason": "near-duplicate of the kept example, which ranks higher "
                        "(meets acceptance, then gap, then strong mean, then file order)",
                    }
                    for i in rest
                ],
            }
        )
    return [i for i in range(len(examples)) if i not in dropped], report


def dedup_run(
    run_dir: Path,
    *,
    threshold: float = 0.7,
    on: str = "task",
    shingle: int = 3,
    detector: Detector | None = None,
    method: str = "minhash",
) -> dict[str, Any]:
    """Deduplicate ``run_dir/examples.jsonl``. ``detector`` replaces MinHash (embeddings): it gets the
    texts and returns the near-duplicate pairs and a similarity function for any two of them."""
    path = run_dir / "examples.jsonl"
    if not path.exists():
        raise UserError(f"{run_dir} has no examples.jsonl")
    if not 0 < threshold <= 1:
        raise UserError(f"--threshold must be in (0, 1], got {threshold}")
    examples = read_examples(path)
    texts = [task_text(e, on) for e in examples]
    if detector is None:
        sets = [shingles(t, shingle) for t in texts]
        pairs: Sequence[Pair] = near_duplicate_pairs(texts, threshold=threshold, n=shingle)

        def similarity(i: int, j: int) -> float:
            return jaccard(sets[i], sets[j])
    else:
        pairs, similarity = detector(texts)
    kept, report = plan(examples, pairs, similarity=similarity)
    out = run_dir / DEDUP_FILE
    atomic_jsonl(out, (examples[i].stored() for i in kept))
    result = {
        "method": method,
        "threshold": threshold,
        "compared_on": on,
        "shingle_words": shingle if detector is None else None,
        "examples_before": len(examples),
        "examples_after": len(kept),
        "dropped": len(examples) - len(kept),
        "clusters": report,
        "outputs": {"examples": str(out), "report": str(run_dir / "dedup.json")},
    }
    write_json(run_dir / "dedup.json", result)
    record_flags(
        run_dir,
        "duplicate",
        params={k: result[k] for k in ("method", "threshold", "compared_on", "shingle_words")},
        checked=len(examples),
        flagged=[
            (d["id"], f"near-duplicate of {c['kept']}", {"kept": c["kept"], "similarity": d["similarity_to_kept"]})
            for c in report
            for d in c["dropped"]
        ],
    )
    return result


def record_flags(run_dir: Path, kind: str, **check: Any) -> None:
    """Record a check's verdicts in the run store (``store/flags.py``), where ``export`` reads them;
    a directory without ``run.db`` (examples from elsewhere) keeps only the JSON report."""
    from autodata.store.run_store import RunStore

    if not (run_dir / "run.db").is_file():
        return
    store = RunStore.open_existing(run_dir)
    try:
        store.flags().record_check(kind, **check)
    finally:
        store.close()
