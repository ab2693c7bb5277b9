"""The judge: one 0/1 mark per rubric criterion of one answer, with quoted evidence.

Marks are addressed by index and must cover every criterion exactly once; an answer from the judge
that misses, repeats or invents an index is invalid and asked again, never filled with defaults.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from autodata.judging.framing import fence, one_line
from autodata.judging.schemas import JudgeMarks, RubricItem
from autodata.judging.templates import render
from autodata.llm.runtime import ModelRuntime
from autodata.llm.structured import OutputError, pydantic_validator, schema_for


@dataclass(slots=True)
class Marking:
    marks: list[int]  # aligned with the rubric
    evidence: list[str]
    repairs: list[str]


def marks_validator(n: int):
    base = pydantic_validator(JudgeMarks)

    def validate(obj: Any) -> tuple[Any, list[str]]:
        value, notes = base(obj)
        seen: dict[int, int] = {}
        for m in value.marks:
            if m.index >= n:
                raise OutputError(f"mark for criterion {m.index}, but the rubric has criteria 0 to {n - 1}")
            if m.index in seen:
                raise OutputError(f"criterion {m.index} was marked twice")
            seen[m.index] = 1
        missing = [i for i in range(n) if i not in seen]
        if missing:
            raise OutputError(f"no mark for criteria {missing}; give one mark for every criterion 0 to {n - 1}")
        return value, notes

    return validate


async def mark(
    runtime: ModelRuntime,
    endpoint: str,
    question: str,
    rubric: Sequence[RubricItem],
    answer: str,
    *,
    sample: int = 0,
    context: str | None = None,
) -> Marking:
    """Mark one answer against the rubric (one call; invalid marks are re-asked, never defaulted).

    Every text the challenger wrote is data: the question, each criterion and the answer sit in
    labelled blocks with closing tags neutralised (:func:`fence`), and each criterion is flattened
    to one line so it cannot forge another ``[index]`` line. ``context`` (``loop.judge_sees_context``;
    off by default, as in the paper) is shown fenced in a ``<context>`` block. A solver's reasoning
    is never an argument here: only its final answer is judged.
    """
    shown = [{"criterion": fence(one_line(item.criterion))} for item in rubric]
    prompt = render(
        "judge.j2",
        question=fence(question),
        answer=fence(answer),
        rubric=shown,
        context=fence(context) if context else "",
    )
    res = await runtime.structured(
        endpoint,
        [{"role": "user", "content": prompt}],
        schema=schema_for(JudgeMarks),
        validator=marks_validator(len(rubric)),
        role="judge",
        sample=sample,
    )
    by_index = {m.index: m for m in res.value.marks}
    ordered = [by_index[i] for i in range(len(rubric))]
    return Marking([int(m.met) for m in ordered], [m.evidence for m in ordered], res.repairs)
