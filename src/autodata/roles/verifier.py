"""The quality verifier: an LLM check plus the structural rubric checks done in code."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

from autodata.config import directive_entries
from autodata.documents import Document
from autodata.judging.framing import fence
from autodata.judging.rubric import Criterion, RubricRules, check_rubric
from autodata.llm.runtime import ModelRuntime
from autodata.prompts import render
from autodata.roles.schemas import ChallengerOutput, QualityVerdict


@dataclass(slots=True)
class QualityReport:
    passed: bool
    issues: list[str]
    feedback: str
    structural: list[str] = field(default_factory=list)  # problems found in code, not by the model
    measured: dict[str, object] | None = None  # what the scorer's checks measured (the code profile: sandbox runs)

    def to_dict(self) -> dict[str, object]:
        d: dict[str, object] = {
            "passed": self.passed,
            "issues": self.issues,
            "feedback": self.feedback,
            "structural": self.structural,
        }
        if self.measured is not None:
            d["measured"] = self.measured
        return d


def criteria(example: ChallengerOutput) -> list[Criterion]:
    return [Criterion(r.criterion, r.weight, r.category) for r in example.rubric]


async def verify(
    runtime: ModelRuntime,
    endpoint: str,
    doc: Document,
    example: ChallengerOutput,
    *,
    instructions: str = "",
    directives: Sequence[str] = (),
    rules: RubricRules = RubricRules(),
    sample: int = 0,
    max_answer_chars: int | None = None,
    rubric_rules: bool = True,
) -> QualityReport:
    """Structural problems fail the example without asking the model (cheaper, and not negotiable).

    ``max_answer_chars`` (exact-answer profiles): the rubric is the harness's own one-criterion
    check, so instead of the rubric rules the reference must be one short final answer.
    ``rubric_rules=False`` (scorers with their own rubric, e.g. the code profile's unit tests): the
    rubric rules do not apply.
    """
    if not rubric_rules:
        structural = []
    elif max_answer_chars is None:
        structural = check_rubric(criteria(example), rules)
    else:
        ref = example.reference_answer.strip()
        structural = (
            [
                "the reference answer must be one short final value or expression "
                f"(at most {max_answer_chars} characters, one line)"
            ]
            if len(ref) > max_answer_chars or "\n" in ref
            else []
        )
    if structural:
        return QualityReport(False, ["rubric_unsound"], "; ".join(structural), structural)
    shown = directive_entries(list(directives), "quality_verifier")
    prompt = render(
        "quality_verifier.j2",
        instructions=instructions,
        directives=json.dumps(shown, ensure_ascii=False, indent=1) if shown else "",
        document_id=doc.id,
        document=fence(doc.text),
        context=fence(example.context),
        question=fence(example.question),
        reference_answer=fence(example.reference_answer),
        rubric=[{"weight": r.weight, "criterion": fence(r.criterion)} for r in example.rubric],
    )
    res = await runtime.structured(
        endpoint, [{"role": "user", "content": prompt}], QualityVerdict, role="quality_verifier", sample=sample
    )
    verdict: QualityVerdict = res.value
    passed = verdict.verdict == "pass"
    return QualityReport(passed, list(verdict.issues), verdict.feedback)
