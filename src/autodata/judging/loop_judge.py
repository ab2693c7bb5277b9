"""The loop judge of the legal profile: reads an evaluated example and says accept or improve.

It sees the document, the example, and per-criterion hit rates and scores the harness computed,
never the solvers' answers (it judges the example, not the answers). Its verdict feeds the
``judge`` acceptance preset, whose code-level checks can turn an accept into improve but never the
other way round.
"""

from __future__ import annotations

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


def _pct(scores: Sequence[float]) -> str:
    return f"{100 * fmean(scores):.0f}%" if scores else "n/a"


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
            "criterion": item.criterion,
            "weak": _hit_rate(weak_marks, i),
            "strong": _hit_rate(strong_marks, i),
        }
        for i, item in enumerate(example.rubric)
    ]
    gap = f"{100 * (fmean(strong_scores) - fmean(weak_scores)):.0f}" if weak_scores and strong_scores else "n/a"
    prompt = render(
        "loop_judge.j2",
        document_id=document_id,
        document=fence(document),
        context=fence(example.context),
        question=example.question,
        reference_answer=example.reference_answer,
        rubric_rows=rows,
        weak_mean=_pct(weak_scores),
        strong_mean=_pct(strong_scores),
        gap=gap,
    )
    res = await runtime.structured(
        endpoint, [{"role": "user", "content": prompt}], LoopVerdict, role="loop_judge", sample=sample
    )
    return res.value
