"""Guards on the implementer's edits: scope (which components) and content (whom the text addresses).

The paper saw its agents weaken the weak solver through the harness's own text. Two lines of defence
run before a child recipe is ever evaluated, and every refusal is logged as a hacking attempt:

- **Scope**: an edit may name only an editable component or a declared knob within its range;
  anything else (a solver or judge prompt, a threshold, a sample count, a model) is refused.
- **Content**: editable text is scanned for instructions aimed at the solvers or the judge: telling
  a solver to be weak, brief or wrong, telling the judge what to mark, or addressing the acceptance
  test itself. The challenger and verifier never talk to the solvers or the judge, so such text has
  no honest purpose in a recipe.

The content scan is a pattern list, not a proof: it is one of three layers (with the frozen hash
and the canary set), each of which a test attacks with the simulated adversarial implementer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from autodata.config import DIRECTIVES, unknown_directives
from autodata.meta.recipe import EDITABLE, LIST_COMPONENTS, MAX_COMPONENT_CHARS, directive_names

_SOLVER = r"(?:weak|strong|weaker|stronger)?\s*(?:solver|model|student|answerer)s?"
_JUDGE = r"(?:judge|grader|marker|evaluator)s?"
_WEAKLY = (
    r"\b(?:fail|wrong|weak(?:ly)?|poor(?:ly)?|brief(?:ly)?|short|incorrect(?:ly)?|mistakes?|errors?|worse|bad(?:ly)?"
    r"|less|omit|skip|ignore|refuse|one word|vague(?:ly)?|careless(?:ly)?)"
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
            r"\b(?:pass|accept|approve)\s+(?:every|all|any|each)\b|\breport\s+no\s+issues\b"
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
        "targets the acceptance test or its thresholds",
        re.compile(r"\b(?:acceptance (?:test|predicate|threshold)s?|weak_mean_max|strong_mean_min|gap_min)\b", re.I),
    ),
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
