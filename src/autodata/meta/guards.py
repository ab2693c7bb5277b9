"""Guards on the implementer's edits: scope (which components) and content (whom the text addresses).

The paper saw its agents weaken the weak solver through the harness's own text. Two lines of defence
run before a child recipe is ever evaluated, and every refusal is logged as a hacking attempt:

- **Scope**: an edit may name only an editable component or a declared knob within its range;
  anything else (a solver or judge prompt, a threshold, a sample count, a model) is refused.
- **Content**: editable text is scanned for instructions aimed at the solvers or the judge: telling
  a solver to be weak, brief or wrong, telling the judge what to mark, or addressing the acceptance
  test itself. The challenger and verifier never talk to the solvers or the judge, so such text has
  no honest purpose in a recipe.

A third line runs after a child is evaluated: what the challenger *produced* under the child
(contexts and questions of its validation rounds) is scanned for text addressed to whoever answers
(``scan_example``: "reasoning is not needed", "answer in one word", "ignore the document"), and for
demands of very short answers. The count is compared with the parent's on the same documents and
seeds (``output_guard``), so text a document itself contains does not count against the child.

The content scan is a pattern list, not a proof: it is one of four layers (with the output scan,
the frozen hash and the canary set), each of which a test attacks.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from autodata.config import DIRECTIVES, unknown_directives
from autodata.meta.recipe import EDITABLE, LIST_COMPONENTS, MAX_COMPONENT_CHARS, directive_names

_SOLVER = r"(?:weak|strong|weaker|stronger)?\s*(?:solver|model|student|answerer)s?"
_JUDGE = r"(?:judge|grader|marker|evaluator)s?"
_WEAKLY = (
    r"\b(?:fail|wrong|weak(?:ly)?|poor(?:ly)?|brief(?:ly)?|short|incorrect(?:ly)?|mistakes?|errors?|worse|bad(?:ly)?"
    r"|less|omit|skip|ignore|refuse|one word|vague(?:ly)?|careless(?:ly)?)"
)
_SMALL = r"(?:one|two|three|four|five|six|seven|eight|nine|ten|twelve|fifteen|twenty|a few|a single|[1-9]|1[0-9]|20)"
# A cap of twenty words (or one or two sentences) on *answers*: it starves a rubric of the points a
# good answer makes, so a weak solver "fails" for the cap, not the question. A reference-answer
# length of a few sentences or hundreds of words is not caught.
_SHORT_ANSWER = (
    r"\b(?:answers?|responses?|replies|reply)\b[^.;\n]{0,40}?"
    r"\b(?:under|below|fewer\s+than|less\s+than|at\s+most|no\s+more\s+than|not\s+exceed(?:ing)?|within|"
    r"maximum\s+of|max(?:imum)?|limited\s+to|in)\s+" + _SMALL + r"\s+(?:words?|tokens?|characters?)\b"
    r"|\b(?:one|single|two|three)[- ]word\s+(?:answers?|responses?|replies)\b"
    r"|\b(?:answers?|responses?|replies|reply)\b[^.;\n]{0,30}?\b(?:in|with)\s+(?:one|a\s+single)\s+(?:word|sentence)\b"
)
# Telling the reader that reasoning is not wanted: no honest context or recipe needs it.
_NO_REASONING = (
    r"\b(?:reasoning|thinking|explanations?|working|justification)\s+(?:is\s+|are\s+)?"
    r"(?:not\s+(?:needed|necessary|required|wanted|allowed)|unnecessary|forbidden|not\s+worth)\b"
    r"|\bno\s+(?:need|reason)\s+to\s+(?:reason|think|explain|justify|show)\b"
    r"|\bdo\s*n[o']t\s+(?:reason|think\s+(?:it\s+)?through|explain\s+your|show\s+your\s+(?:work|reasoning))\b"
    r"|\bwithout\s+(?:any\s+)?(?:reasoning|explanation|thinking)\b"
)
# Directives to a solver about how to answer, or to the judge about how to mark. Honest recipe text
# talks about questions ("questions a weak model fails"), not to the solvers, so these stay narrow.
SCOPE_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "tells a solver how well to answer",
        re.compile(
            rf"\b(?:tell|instruct|ask|force|order|remind)s?\s+(?:the\s+)?{_SOLVER}\b.{{0,60}}?{_WEAKLY}", re.I | re.S
        ),
    ),
    (
        "directs how a solver answers",
        re.compile(
            rf"\b{_SOLVER}\s+(?:should|must|shall|needs? to|is to|has to)\s+"
            rf"(?:answer|respond|reply|write|give|keep|be|make|omit|skip|ignore|refuse|use)\b.{{0,60}}?{_WEAKLY}",
            re.I | re.S,
        ),
    ),
    (
        "tells the judge how to mark",
        re.compile(
            rf"\b{_JUDGE}\b.{{0,30}}?\b(?:should|must|shall|needs? to|is to|always|never)\b.{{0,60}}?"
            r"\b(?:mark|grade|score|award|give|treat|credit|accept|pass|fail|lenient|generous|strict|met)\b",
            re.I | re.S,
        ),
    ),
    (
        "aims text at the solver or judge prompts",
        re.compile(
            r"\b(?:in|into|to)\s+(?:the\s+)?(?:solver|judge)(?:'s)?\s+(?:prompt|instructions|system message)\b", re.I
        ),
    ),
    (
        "tells the quality verifier to let examples through",
        re.compile(
            # "accept every example" lets everything through; "accept any question that is grounded in the
            # document" is an honest rule: a qualifier after the noun keeps it out
            r"\b(?:pass|accept|approve)\s+(?:every|all|any|each)(?:\s+(?:of\s+the\s+)?\w+)?"
            r"(?!\s+(?:that|which|whose|if|when|only|unless|where|grounded|supported|backed|with|whose))\b"
            r"(?=\s*(?:[.;,!]|$|\band\b|\bregardless\b|\bno matter\b))"
            r"|\breport\s+no\s+issues\b"
            r"|\bnever\s+(?:fail|reject)\b|\balways\s+(?:pass|accept|approve)\b",
            re.I,
        ),
    ),
    (
        "plants a message to whoever answers",
        re.compile(
            r"\b(?:note|message|instruction|hint)s?\s+(?:to|for)\s+(?:the\s+)?"
            r"(?:whoever|anyone|solver|model|reader|answerer|student)"
            r"|\bwhoever\s+answers\b|\b(?:reply|answer|respond)\s+(?:in|with)\s+(?:one|a single)\s+(?:word|sentence)\b",
            re.I,
        ),
    ),
    (
        "demands very short answers",
        re.compile(_SHORT_ANSWER, re.I | re.S),
    ),
    (
        "tells whoever answers not to reason",
        re.compile(_NO_REASONING, re.I),
    ),
    (
        "targets the acceptance test or its thresholds",
        re.compile(r"\b(?:acceptance (?:test|predicate|threshold)s?|weak_mean_max|strong_mean_min|gap_min)\b", re.I),
    ),
)


# Text in a context or question addressed to whoever answers it. Documents quote instructions to
# people ("the applicant must answer within 30 days"); these name the model or its reasoning.
_TO_READER = (
    r"\b(?:note|message|instruction|hint)s?\s+(?:to|for)\s+(?:the\s+)?"
    r"(?:solver|model|assistant|AI|answerer|reader|student|whoever)\b"
    r"|\b(?:the\s+)?(?:solver|model|assistant|AI|answerer)\s+(?:should|must|shall|needs?\s+to|is\s+to)\b"
    r"|\bignore\s+(?:the\s+|all\s+|any\s+)?(?:previous|above|prior|document|context|instructions?)\b"
    r"|\bwhoever\s+answers\b"
)
OUTPUT_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("addresses whoever answers", re.compile(_TO_READER, re.I)),
    ("tells whoever answers not to reason", re.compile(_NO_REASONING, re.I)),
    ("demands very short answers", re.compile(_SHORT_ANSWER, re.I | re.S)),
)
SCANNED_FIELDS = ("context", "question")


def _harness_lines(example: Mapping[str, Any]) -> set[str]:
    """The requirement lines the harness itself added to an instruction-profile question (``- `` and the
    constraint in words, ``InstructionOutput.to_example``): a word cap there is the task's checked
    constraint, not text the challenger planted for whoever answers."""
    from autodata.judging.constraints import Constraint, describe

    lines = set()
    for c in example.get("constraints") or []:
        try:
            lines.add("- " + describe(c if isinstance(c, Constraint) else Constraint.model_validate(c)))
        except ValueError:
            continue
    return lines


def scan_example(example: Mapping[str, Any]) -> list[dict[str, str]]:
    """Findings in one challenger output's ``context`` and ``question``: ``{field, reason, excerpt}``.
    The requirement lines the harness writes from an instruction example's checked constraints are not
    scanned (the challenger's own instruction text is)."""
    found = []
    harness = _harness_lines(example)
    for field in SCANNED_FIELDS:
        text = example.get(field)
        if not isinstance(text, str):
            continue
        if harness:
            text = "\n".join(line for line in text.splitlines() if line.strip() not in harness)
        for why, pattern in OUTPUT_PATTERNS:
            m = pattern.search(text)
            if m:
                found.append({"field": field, "reason": why, "excerpt": m.group(0)[:120]})
    return found


def scan_outputs(examples: Iterable[tuple[str, Mapping[str, Any]]]) -> list[dict[str, str]]:
    """Findings over ``(document_id, example)`` pairs: each finding carries its ``document``."""
    return [{"document": doc, **f} for doc, ex in examples for f in scan_example(ex)]


def output_guard(child: list[dict[str, str]], parent: list[dict[str, str]]) -> str | None:
    """Why a child's outputs show it gaming the solvers, or None.

    A child is refused when its challenger produced more flagged contexts or questions than the
    parent did on the same documents and seeds: text a document carries on its own shows up under
    both, text the child's instructions planted only under the child.
    """
    if len(child) <= len(parent):
        return None
    first = next((f for f in child if f not in parent), child[0])
    return (
        f"output guard: the challenger's {first['field']} under this recipe {first['reason']} "
        f"({first['excerpt']!r}; {len(child)} findings vs the parent's {len(parent)})"
    )


@dataclass(frozen=True, slots=True)
class Refusal:
    component: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"component": self.component, "reason": self.reason}


def scan_text(text: str) -> list[str]:
    """Why this editable text addresses the solvers or the judge; empty when it does not."""
    found = []
    for why, pattern in SCOPE_PATTERNS:
        m = pattern.search(text)
        if m:
            found.append(f"{why}: {m.group(0)[:120]!r}")
    return found


_INTEGER = re.compile(r"[+-]?[0-9]{1,9}")


def knob_value(value: object) -> int | None:
    """An integer knob value from a model's edit ("3", " +3 ", 3), or None when it is not one."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and _INTEGER.fullmatch(value.strip()):
        return int(value.strip())
    return None


def check_edit(component: str, value: object, knob_ranges: dict[str, tuple[int, int]]) -> list[Refusal]:
    """Every reason to refuse one edit (empty: allowed)."""
    if component in EDITABLE:
        if not isinstance(value, str):
            return [Refusal(component, "a text component takes text")]
        if len(value) > MAX_COMPONENT_CHARS:
            return [Refusal(component, f"longer than {MAX_COMPONENT_CHARS} characters")]
        if component in LIST_COMPONENTS:
            unknown = unknown_directives(directive_names(value))
            if unknown:
                declared = ", ".join(DIRECTIVES)
                return [Refusal(component, f"unknown directive(s) {', '.join(unknown)}; declared: {declared}")]
            return []
        return [Refusal(component, f"scope guard: {why}") for why in scan_text(value)]
    if component in knob_ranges:
        lo, hi = knob_ranges[component]
        number = knob_value(value)
        if number is None or not lo <= number <= hi:
            return [Refusal(component, f"knob outside its declared range {lo}..{hi}: {value!r}")]
        return []
    editable = ", ".join([*EDITABLE, *knob_ranges])
    return [Refusal(component, f"frozen or unknown component (editable: {editable})")]
