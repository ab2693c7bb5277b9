"""The loop judge of the legal profile: reads an evaluated example and says accept or improve.

It sees the document, the example, and per-criterion hit rates and scores the harness computed,
never the solvers' answers (it judges the example, not the answers). Its verdict feeds the
``judge`` acceptance preset, whose code-level checks can turn an accept into improve but never the
other way round.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from statistics import fmean
from typing import Protocol

from autodata.judging.framing import fence
from autodata.judging.schemas import LoopVerdict, RubricItem
from autodata.judging.templates import render
from autodata.llm.runtime import ModelRuntime


class Evaluated(Protocol):
    """What the loop judge reads of an example (the challenger's ``ChallengerOutput`` has these fields)."""

    context: str
    question: str
    reference_answer: str
    rubric: list[RubricItem]


def _hit_rate(marks: Sequence[Sequence[int]], i: int) -> str:
    return f"{sum(m[i] for m in marks)}/{len(marks)}" if marks else "n/a"


def _mean(scores: Sequence[float]) -> float | None:
    return round(fmean(scores), 4) if scores else None


async def review(
    runtime: ModelRuntime,
    endpoint: str,
    example: Evaluated,
    *,
    document_id: str,
    document: str,
    weak_marks: Sequence[Sequence[int]],
    strong_marks: Sequence[Sequence[int]],
    weak_scores: Sequence[float],
    strong_scores: Sequence[float],
    sample: int = 0,
) -> LoopVerdict:
    """The loop judge's verdict on one evaluated example (``document`` is the source text it is grounded in).

    Marks are per attempt, aligned with ``example.rubric``; scores are in [0, 1]. Raises ``CallError``
    when the call fails for good (invalid output after the runtime's re-asks included).
    """
    rows = [
        {
            "weight": item.weight,
            "criterion": fence(item.criterion),
            "weak": _hit_rate(weak_marks, i),
            "strong": _hit_rate(strong_marks, i),
        }
        for i, item in enumerate(example.rubric)
    ]
    weak, strong = _mean(weak_scores), _mean(strong_scores)
    gap = round(strong - weak, 4) if weak is not None and strong is not None else None
    scores = {"weak_mean": weak, "strong_mean": strong, "gap": gap}  # the <scores> block: null when not run
    prompt = render(
        "loop_judge.j2",
        document_id=document_id,
        document=fence(document),
        context=fence(example.context),
        question=fence(example.question),
        reference_answer=fence(example.reference_answer),
        rubric_rows=rows,
        scores_json=json.dumps(scores),
    )
    res = await runtime.structured(
        endpoint, [{"role": "user", "content": prompt}], LoopVerdict, role="loop_judge", sample=sample
    )
    return res.value
