"""Simulated roles of the ``instruction`` profile: an instruction writer and solvers that follow (or miss)
its checkable constraints.

The challenger (schema ``InstructionOutput``) writes a briefing task about the document's key terms
with more checkable constraints the higher its target difficulty (the same target as the other
challengers), a reference answer that meets them, and rubric criteria in the simulator's
machine-readable form (``mentions 'term'``), which the simulated judge marks.

The solver (free text) is identified by the requirement lines of its ``<question>`` block, in the
form the harness writes them (:func:`autodata.judging.constraints.describe`); it meets each
requirement with probability ``0.05 + 0.9 sigmoid(8 (s - d))`` for skill ``s`` and a difficulty ``d``
that grows with the number of requirements, and otherwise misses it the way models do (a word too
many, a bullet too few, a forbidden word, prose instead of JSON). Nothing here decides a score: the
harness checks the constraints in code and the judge marks the rest.
"""

from __future__ import annotations

import json
import random
import re
from typing import Any

from autodata.judging.constraints import Constraint
from autodata.sim.base import SimOutput, SimRequest, structured
from autodata.sim.roles import key_terms, sigmoid, target

_REQ = "Requirements:\n"


def requirements(question: str | None) -> list[Constraint] | None:
    """The constraints a question's requirement lines state (the harness's own wording), or None."""
    if not question or _REQ not in question:
        return None
    found: list[Constraint] = []
    for line in question.split(_REQ, 1)[1].splitlines():
        line = line.strip().removeprefix("- ")
        c = _parse(line)
        if c is None:
            return None
        found.append(c)
    return found or None


_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^the answer has at most (\d+) words$"), "max_words"),
    (re.compile(r"^the answer has at least (\d+) words$"), "min_words"),
    (re.compile(r"^the whole answer is valid JSON$"), "json"),
    (re.compile(r"^the answer uses each of these words: (.+)$"), "include_keywords"),
    (re.compile(r"^the answer uses none of these words: (.+)$"), "exclude_keywords"),
    (re.compile(r"^the answer has exactly (\d+) bullet points"), "bullet_count"),
    (re.compile(r"^the answer is written in the language with ISO 639-1 code '([a-z]{2})'$"), "language"),
]


def _parse(line: str) -> Constraint | None:
    for pattern, kind in _PATTERNS:
        m = pattern.match(line)
        if m:
            if kind == "json":
                return Constraint(kind="json")
            raw = m.group(1)
            value: Any = int(raw) if kind in ("max_words", "min_words", "bullet_count") else raw
            if kind in ("include_keywords", "exclude_keywords"):
                value = [w.strip() for w in raw.split(",")]
            return Constraint(kind=kind, value=value)
    return None


def compose(terms: list[str], constraints: list[Constraint], follow: list[bool], rng: random.Random) -> str:
    """An answer about ``terms`` that meets constraint i exactly when ``follow[i]``."""
    rules = {c.kind: (c, f) for c, f in zip(constraints, follow, strict=True)}
    include = list(rules["include_keywords"][0].value) if "include_keywords" in rules else []  # type: ignore[arg-type]
    exclude = list(rules["exclude_keywords"][0].value) if "exclude_keywords" in rules else []  # type: ignore[arg-type]
    if "include_keywords" in rules and not rules["include_keywords"][1]:
        include = include[:-1]  # one required word forgotten
    said = [t for t in terms if t.lower() not in {w.lower() for w in exclude}]
    if "exclude_keywords" in rules and not rules["exclude_keywords"][1]:
        said.append(exclude[0])  # a forbidden word slips in
    points = [f"{t} matters for the result" for t in (said + include)[:6]] or ["the setting matters"]
    if "bullet_count" in rules:
        c, ok = rules["bullet_count"]
        n = int(c.value)  # type: ignore[arg-type]
        points = (points * (n + 2))[: n if ok else n + 1]
    if "json" in rules:
        body = {"summary": f"A briefing on {', '.join((said + include)[:3])}.", "points": points}
        text = json.dumps(body) if rules["json"][1] else f"Summary: {body['summary']} " + "; ".join(points)
    elif "bullet_count" in rules:
        text = f"A briefing on {', '.join(include) or 'the topic'}.\n" + "\n".join(f"- {p}." for p in points)
    else:
        text = f"A briefing on {', '.join(include) or 'the topic'}. " + " ".join(f"{p.capitalize()}." for p in points)
    if "min_words" in rules:
        c, ok = rules["min_words"]
        need = int(c.value)  # type: ignore[arg-type]
        pad = " It also bears on the wider setting."
        while ok and len(text.split()) < need:
            text = text + pad if "json" not in rules else text  # JSON stays JSON (min_words is not paired with it)
            if "json" in rules:
                break
        if not ok:
            text = " ".join(text.split()[: max(1, need // 2)])
    if "max_words" in rules:
        c, ok = rules["max_words"]
        limit = int(c.value)  # type: ignore[arg-type]
        if not ok:
            text += " Moreover" + " this point deserves a longer treatment" * (limit // 5 + 1) + "."
    return text


def challenger(req: SimRequest) -> SimOutput:
    rng = req.rng
    terms = key_terms(req.inputs["document"], rng, 8)
    aim = target(req.inputs, rng)
    n = max(1, min(4, round(1 + aim * 4)))
    kinds = rng.sample(["include_keywords", "exclude_keywords", "bullet_count", "max_words", "json"], n)
    if "json" in kinds and "bullet_count" in kinds:
        kinds.remove("bullet_count")
    constraints: list[Constraint] = []
    for k in kinds:
        if k == "include_keywords":
            constraints.append(Constraint(kind=k, value=terms[:2]))
        elif k == "exclude_keywords":
            constraints.append(Constraint(kind=k, value=[terms[-1]]))
        elif k == "bullet_count":
            constraints.append(Constraint(kind=k, value=rng.randint(3, 5)))
        elif k == "max_words":
            constraints.append(Constraint(kind=k, value=120))
        else:
            constraints.append(Constraint(kind="json"))
    reference = compose(terms[:4], constraints, [True] * len(constraints), rng)
    if rng.random() < 0.08:  # a slip: the reference misses one of its own constraints
        reference = compose(terms[:4], constraints, [False] + [True] * (len(constraints) - 1), rng)
    value = {
        "question_type": rng.choice(["briefing", "summary", "structured extraction"]),
        "reasoning_skills": ["following constraints", "summarising"],
        "context": f"The document discusses {', '.join(terms[:6])}.",
        "instruction": f"Write a short briefing for a new team member on how {terms[0]} relates to {terms[1]}.",
        "constraints": [c.model_dump() for c in constraints],
        "reference_answer": reference,
        "rubric": [
            {"criterion": f"The answer mentions '{terms[0]}'", "weight": 2, "category": "coverage"},
            {"criterion": f"The answer mentions '{terms[2]}'", "weight": 1, "category": "coverage"},
            {"criterion": f"The answer claims that '{terms[0]}' is the same as '{terms[1]}'", "weight": -1,
             "category": "accuracy"},
        ],
    }  # fmt: skip
    return structured(req, value)


def solver(req: SimRequest) -> SimOutput:
    """A solver on a question with requirement lines (:func:`requirements`)."""
    constraints = requirements(req.inputs["question"])
    assert constraints is not None
    rng = req.rng
    d = 0.1 + 0.14 * len(constraints)
    p = 0.05 + 0.9 * sigmoid(8.0 * (req.model.skill - d))
    terms = key_terms(req.inputs.get("context") or "", random.Random(0), 6)
    covered = [t for t in terms if rng.random() < 0.2 + 0.8 * sigmoid(8.0 * (req.model.skill - d))] or terms[-1:]
    follow = [rng.random() < p for _ in constraints]
    text = compose(covered, constraints, follow, rng)
    if len(terms) >= 2 and rng.random() < 0.6 * (1 - p) and "json" not in {c.kind for c in constraints}:
        text += f"\nNote that '{terms[0]}' is the same as '{terms[1]}'."  # a typical confusion
    return SimOutput(text=f"[simulated {req.model.name}]\n" + text)
