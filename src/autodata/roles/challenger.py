"""The challenger: one grounded example (context, question, reference answer, rubric) per round."""

from __future__ import annotations

from collections.abc import Sequence

from autodata.documents import Document
from autodata.judging.framing import fence
from autodata.judging.rubric import RubricRules
from autodata.llm.runtime import ModelRuntime
from autodata.llm.types import StructuredResult
from autodata.prompts import render
from autodata.roles.schemas import ChallengerOutput, CodeTaskOutput, ShortAnswerOutput

OUTPUTS: dict[str, type] = {"code-task": CodeTaskOutput}  # output models a profile can name (challenger_output)


async def propose(
    runtime: ModelRuntime,
    endpoint: str,
    doc: Document,
    *,
    instructions: str,
    feedback: Sequence[str] = (),
    round_no: int = 0,
    rules: RubricRules = RubricRules(),
    template: str = "challenger.j2",
    guidance: str = "papers",
    short_answer: bool = False,
    output: str = "",
) -> StructuredResult:
    """Ask for one example. ``round_no`` is the sample index, so every round is its own cached call.

    ``short_answer`` (the verifiable profile) asks for one exact answer instead of a rubric;
    ``output`` names another output model of :data:`OUTPUTS` (the code profile: ``code-task``).
    """
    prompt = render(
        template,
        instructions=instructions,
        guidance=guidance,
        feedback=list(feedback),
        document_id=doc.id,
        title=fence(doc.title).replace('"', "'"),
        document=fence(doc.text),
        min_positive=rules.min_positive,
        max_positive=rules.max_positive,
        min_negative=rules.min_negative,
        max_negative=rules.max_negative,
        max_weight=rules.max_abs_weight,
    )
    model = OUTPUTS[output] if output else ShortAnswerOutput if short_answer else ChallengerOutput
    return await runtime.structured(
        endpoint, [{"role": "user", "content": prompt}], model, role="challenger", sample=round_no
    )
