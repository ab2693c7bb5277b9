"""Every profile's challenger prompt, as rendered: each output field named, a worked checkable and
uncheckable example that is itself valid output, a length target for the context, the self-tests and
the seed's warning (one shared block, adapted per profile), the ``<rubric_rules>`` block wherever the
challenger writes a rubric, and the document before the round's feedback (what is shared first, so a
server's prefix cache serves every round of a document)."""

from __future__ import annotations

import asyncio
import json
import re

import pytest
from pydantic import BaseModel

from autodata.documents import Document
from autodata.judging.constraints import Constraint
from autodata.judging.rubric import RubricRules
from autodata.judging.schemas import RubricItem
from autodata.loop.profile import PROFILES
from autodata.prompts import render
from autodata.roles.challenger import CONTEXT_WORDS, OUTPUTS, propose
from autodata.roles.schemas import ChallengerOutput, ShortAnswerOutput

RULES = RubricRules(min_positive=2, max_positive=6, min_negative=0, max_negative=2, max_abs_weight=5)
FEEDBACK = [
    {"round": 0, "stage": "weak", "codes": ["too_easy"], "weak_mean": 0.9, "strong_mean": None, "gap": None,
     "issues": [], "messages": ["too easy"], "question_type": "x", "question": "Why?"}
]  # fmt: skip


class Recorder:
    def __init__(self) -> None:
        self.prompts: list[str] = []
        self.outputs: list[type] = []

    async def structured(self, endpoint, messages, output, **kw):
        self.prompts.append(messages[-1]["content"])
        self.outputs.append(output)


def rendered(name: str, feedback: bool = True) -> tuple[str, type[BaseModel]]:
    prof = PROFILES[name]
    rt = Recorder()
    doc = Document(id="d1", source="d1", title="T", text="A document about caches and eviction.", format="txt")
    asyncio.run(
        propose(
            rt,
            "c",
            doc,
            instructions="",
            feedback=["too easy"] if feedback else (),
            feedback_items=FEEDBACK if feedback else (),
            rules=RULES,
            template=prof.challenger_template,
            guidance=prof.guidance,
            short_answer=prof.scoring.short_answer,
            output=prof.challenger_output,
        )
    )
    return rt.prompts[0], rt.outputs[0]


def writes_rubric(name: str) -> bool:
    model = OUTPUTS.get(PROFILES[name].challenger_output) or (
        ShortAnswerOutput if PROFILES[name].scoring.short_answer else ChallengerOutput
    )
    return "rubric" in model.model_fields


@pytest.mark.parametrize("name", list(PROFILES))
def test_every_output_field_is_named_and_the_model_asked_for_is_the_profiles(name):
    prompt, model = rendered(name)
    expected = OUTPUTS.get(PROFILES[name].challenger_output) or (
        ShortAnswerOutput if PROFILES[name].scoring.short_answer else ChallengerOutput
    )
    assert model is expected
    for field in model.model_fields:
        assert re.search(rf"^- {field}:", prompt, re.M), f"{name}: field {field!r} is not named"
    if "rubric" in model.model_fields:
        for field in RubricItem.model_fields:
            assert f"`{field}`" in prompt, f"{name}: rubric item field {field!r} is not named"
    if "constraints" in model.model_fields:
        assert "`kind`" in prompt and "`value`" in prompt


@pytest.mark.parametrize("name", list(PROFILES))
def test_a_length_target_for_the_context(name):
    prompt, _ = rendered(name)
    assert f"about {CONTEXT_WORDS[0]} to {CONTEXT_WORDS[1]}" in " ".join(prompt.split())


@pytest.mark.parametrize("name", list(PROFILES))
def test_the_self_tests_and_the_seeds_warning_are_there_adapted_to_the_profile(name):
    prompt, _ = rendered(name)
    block = render("challenger_checks.j2", guidance=PROFILES[name].guidance)
    assert block and block in prompt
    # each profile's block is its own (adapted), not one text for all
    others = {render("challenger_checks.j2", guidance=p.guidance) for p in PROFILES.values()}
    assert len(others) >= 4


@pytest.mark.parametrize("name", list(PROFILES))
def test_the_worked_checkable_and_uncheckable_examples_are_valid_output(name):
    prompt, _ = rendered(name)
    flat = " ".join(prompt.split())
    good = re.search(r"Checkable: (\{.*?\}|`[^`]*`)", flat)
    bad = re.search(r"Not checkable: (\{.*?\}|`[^`]*`)", flat)
    assert good and bad, f"{name}: no worked example of a checkable versus an uncheckable item"
    if writes_rubric(name):  # rubric criteria: both parse as rubric items (the bad one is bad for its content)
        for m in (good, bad):
            RubricItem.model_validate(json.loads(m.group(1)))
    elif PROFILES[name].scoring.short_answer:
        assert json.loads(good.group(1))["reference_answer"] and json.loads(bad.group(1))["reference_answer"]
    else:  # code: assert statements a test module could hold
        for m in (good, bad):
            compile(m.group(1).strip("`"), "<test>", "exec")
    if "constraints" in (OUTPUTS.get(PROFILES[name].challenger_output) or ChallengerOutput).model_fields:
        shown = re.findall(r'\{"kind": [^}]*\}', flat)
        assert shown and all(Constraint.model_validate(json.loads(c)) for c in shown)


@pytest.mark.parametrize("name", list(PROFILES))
def test_rubric_rules_block_wherever_the_challenger_writes_a_rubric(name):
    prompt, _ = rendered(name)
    blocks = re.findall(r"<rubric_rules>\n(.*?)\n</rubric_rules>", prompt, re.S)
    if writes_rubric(name):
        assert len(blocks) == 1 and json.loads(blocks[0]) == RULES.as_block()
    else:
        assert blocks == []


@pytest.mark.parametrize("name", list(PROFILES))
def test_the_document_comes_before_the_rounds_feedback(name):
    prompt, _ = rendered(name)
    doc_end = prompt.index("</document>")
    for tag in ("<feedback>", "<earlier_rounds>"):
        assert tag in prompt and prompt.index(tag) > doc_end, f"{name}: {tag} before the document"
    # the text up to the document's end is the same with and without feedback: one cached prefix
    plain, _ = rendered(name, feedback=False)
    assert plain[: plain.index("</document>")] == prompt[:doc_end]
