"""The challenger: one grounded example (context, question, reference answer, rubric) per round."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from autodata.config import directive_entries
from autodata.documents import Document
from autodata.judging.acceptance import REASONS
from autodata.judging.framing import fence
from autodata.judging.rubric import RubricRules
from autodata.llm.runtime import ModelRuntime
from autodata.llm.types import StructuredResult
from autodata.prompts import render
from autodata.roles.schemas import ChallengerOutput, CodeTaskOutput, InstructionOutput, ShortAnswerOutput

CONTEXT_WORDS = (80, 300)  # the length target for a challenger's context, in words (shown in its prompt)

OUTPUTS: dict[str, type] = {
    "code-task": CodeTaskOutput,
    "instruction": InstructionOutput,
}  # output models a profile can name (challenger_output)


def example_model(output: str = "") -> type[ChallengerOutput]:
    """The class of the example the loop carries for a profile's ``challenger_output`` (``""``: the plain
    :class:`ChallengerOutput`, which the rubric and short-answer profiles use; ``code-task``: a
    ``CodeExample`` with its hidden tests; ``instruction``: an ``InstructionExample`` with its
    constraints). Whoever stores and re-reads an example (the optimizer's canary) validates with it,
    so no field the profile's scorer reads is dropped."""
    model = OUTPUTS[output] if output else None
    return model.example_type if model is not None else ChallengerOutput


def rounds_by_reason(items: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Earlier rounds grouped by rejection reason, as the paper's orchestrator reports them.

    ``items`` are ``loop.episode.feedback_item`` entries. One group per reason group of
    ``acceptance.REASONS`` (``too_easy``, ``failed_on_strong``, ``quality``, ``broken``, ``judge``;
    ``format`` for output that could not be used), in order of first appearance; each group lists
    its rounds with question type, question, weak and strong averages (0 to 1, null when that
    solver did not run) and the reasons in words. A round with reasons in two groups is in both.
    """
    groups: dict[str, list[dict[str, Any]]] = {}
    for item in items:
        names = dict.fromkeys(
            "format" if code == "output_unusable" else REASONS.get(code, "other") for code in item.get("codes") or []
        )
        entry = {
            "round": item.get("round"),
            "question_type": item.get("question_type"),
            "question": item.get("question"),
            "weak_mean": item.get("weak_mean"),
            "strong_mean": item.get("strong_mean"),
            "reasons": list(item.get("messages") or []),
        }
        for name in names or ("other",):
            groups.setdefault(name, []).append(entry)
    return [{"reason": name, "rounds": rounds} for name, rounds in groups.items()]


async def propose(
    runtime: ModelRuntime,
    endpoint: str,
    doc: Document,
    *,
    instructions: str,
    feedback: Sequence[str] = (),
    feedback_items: Sequence[dict[str, Any]] = (),
    directives: Sequence[str] = (),
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
    ``feedback_items`` (earlier rounds' reason codes and scores) and ``directives`` (declared names,
    ``config.DIRECTIVES``) are shown as fenced JSON blocks, ``<feedback>`` and ``<directives>``;
    ``rules`` (``loop.rubric``) both in prose and as the ``<rubric_rules>`` JSON block.
    """
    shown = directive_entries(list(directives), "challenger")
    prompt = render(
        template,
        instructions=instructions,
        guidance=guidance,
        feedback=list(feedback),
        feedback_items=fence(json.dumps(list(feedback_items), ensure_ascii=False)) if feedback_items else "",
        earlier_rounds=fence(json.dumps(rounds_by_reason(feedback_items), ensure_ascii=False, indent=1))
        if feedback_items
        else "",
        directives=json.dumps(shown, ensure_ascii=False, indent=1) if shown else "",
        document_id=doc.id,
        title=fence(doc.title).replace('"', "'"),
        document=fence(doc.text),
        min_positive=rules.min_positive,
        max_positive=rules.max_positive,
        min_negative=rules.min_negative,
        max_negative=rules.max_negative,
        max_weight=rules.max_abs_weight,
        rubric_rules=json.dumps(rules.as_block()),
        context_words=CONTEXT_WORDS,
    )
    model = OUTPUTS[output] if output else ShortAnswerOutput if short_answer else ChallengerOutput
    return await runtime.structured(
        endpoint, [{"role": "user", "content": prompt}], model, role="challenger", sample=round_no
    )
