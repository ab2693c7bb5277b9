"""How varied a data set is: question types, reasoning skills, documents covered, pairwise similarity.

A data set of many examples can still teach little if they are all one kind of question, cluster on
a few documents, or repeat each other. These are the numbers to see that at a glance.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from autodata.analysis.runs import task_text
from autodata.analysis.similarity import near_duplicate_pairs, pairwise_summary
from autodata.example import Example


def _label(x: Any) -> str:
    return " ".join(str(x).lower().split()) if x else "(none)"


def distribution(labels: Iterable[str], *, top: int = 5) -> dict[str, Any]:
    """Counts, the top labels with their shares, and the evenness (Shannon entropy / its maximum)."""
    counts = Counter(labels)
    total = sum(counts.values())
    if not total:
        return {"distinct": 0, "entropy_bits": 0.0, "evenness": None, "top": []}
    h = -sum(c / total * math.log2(c / total) for c in counts.values())
    return {
        "distinct": len(counts),
        "entropy_bits": h,
        "evenness": h / math.log2(len(counts)) if len(counts) > 1 else 0.0,
        "top": [{"label": k, "share": c / total} for k, c in counts.most_common(top)],
    }


def diversity(
    examples: Sequence[Example], *, documents: int | None = None, threshold: float = 0.7, on: str = "task"
) -> dict[str, Any]:
    texts = [task_text(e, on) for e in examples]
    per_doc = Counter(e.document_id for e in examples)
    return {
        "question_types": distribution(_label(e.question_type) for e in examples),
        "reasoning_skills": distribution(_label(s) for e in examples for s in (e.reasoning_skills or [])),
        "documents": {
            "finished": documents,
            "with_examples": len(per_doc),
            "coverage": len(per_doc) / documents if documents else None,
            "max_examples_per_document": max(per_doc.values(), default=0),
        },
        "similarity": pairwise_summary(texts),
        "near_duplicate_pairs": len(near_duplicate_pairs(texts, threshold=threshold)),
        "near_duplicate_threshold": threshold,
        "compared_on": on,
    }
