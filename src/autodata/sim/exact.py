"""Simulated roles of the ``verifiable`` profile: a short-answer challenger and its solvers.

The challenger turns a document's key terms into a small quantitative problem whose exact answer is
a fraction, picking among candidate problems the one whose latent difficulty lands nearest its
target (the same target as the rubric challenger: structured feedback and declared directives). The
problem states its relation in the simulator's own machine-readable form (``x = 3 and y = 5 … the
relation x/(x+y) gives …``), so a solver can recompute the true answer from the ``<question>`` block
alone (no state): a solver of skill ``s`` gets it right with probability
``0.05 + 0.9 sigmoid(8 (s - d))`` and writes it in one of several equivalent forms (``84/19``,
``\\frac{84}{19}``, a decimal), which is what the code-level equivalence check must see through;
otherwise it makes a typical slip. Its last line follows the answer-extraction contract of the
verifiable profile (``Final answer: v`` or ``\\boxed{v}``), not the solver prompt's wording.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from fractions import Fraction

from autodata.sim.base import SimOutput, SimRequest, structured
from autodata.sim.roles import LEAK_PHRASE, difficulty, key_terms, sigmoid, target

# relation -> (exact value, a typical wrong value)
Relation = Callable[[Fraction, Fraction], Fraction]
RELATIONS: dict[str, tuple[Relation, Relation]] = {
    "x*y/(x+y)": (lambda x, y: x * y / (x + y), lambda x, y: (x + y) / (x * y)),
    "(x-y)/(x+y)": (lambda x, y: (x - y) / (x + y), lambda x, y: (x + y) / (x - y)),
    "x/(x+y)": (lambda x, y: x / (x + y), lambda x, y: y / (x + y)),
    "(x+y)/(2*y)": (lambda x, y: (x + y) / (2 * y), lambda x, y: (x + y) / 2),
    "x**2/(x+y)": (lambda x, y: x**2 / (x + y), lambda x, y: x / (x + y)),
    "(x*y-1)/(x+2*y)": (lambda x, y: (x * y - 1) / (x + 2 * y), lambda x, y: (x * y) / (x + 2 * y)),
}
_PROBLEM = re.compile(r"x = (\d+) and y = (\d+)\b.*?relation (\S+) gives", re.DOTALL)


def states_problem(question: str) -> bool:
    """True when the question states a problem in the simulator's machine-readable form."""
    m = _PROBLEM.search(question)
    return m is not None and m.group(3) in RELATIONS


def fmt(v: Fraction) -> str:
    return str(v.numerator) if v.denominator == 1 else f"{v.numerator}/{v.denominator}"


def challenger(req: SimRequest) -> SimOutput:
    rng = req.rng
    a, b, c = key_terms(req.inputs["document"], rng, 3)
    aim = target(req.inputs, rng)
    candidates = []
    for rel in RELATIONS:
        for _ in range(4):
            x, y = rng.randint(3, 40), rng.randint(2, 30)
            if x == y:
                continue
            q = (
                f"In the study's model, {a} sets x = {x} and y = {y} measures {b}; the relation {rel} gives {c}. "
                f"What is the exact value of {c}?"
            )
            candidates.append((abs(difficulty(q) - aim), q, rel, x, y))
    _, question, rel, x, y = min(candidates)
    answer = fmt(RELATIONS[rel][0](Fraction(x), Fraction(y)))
    context = f"The study relates {a}, {b} and {c}. Quantities are exact; report {c} as a fraction in lowest terms."
    if rng.random() < 0.15:
        context += f" {LEAK_PHRASE} {c} = {answer}."
    value = {
        "question_type": rng.choice(["calculation", "derivation"]),
        "reasoning_skills": ["quantitative reasoning", "algebra"],
        "context": context,
        "question": question,
        "reference_answer": answer,
        "solution": f"Substitute x = {x}, y = {y} into {rel}: {answer}.",
    }
    return structured(req, value)


def solver(req: SimRequest) -> SimOutput:
    """A solver on a problem the question states (:func:`states_problem`)."""
    context, question = req.inputs["context"], req.inputs["question"].strip()
    problem = _PROBLEM.search(question)
    assert problem is not None
    rng = req.rng
    x, y = Fraction(int(problem.group(1))), Fraction(int(problem.group(2)))
    right, slip = RELATIONS[problem.group(3)]
    p = 0.05 + 0.9 * sigmoid(8.0 * (req.model.skill - difficulty(question)))
    if LEAK_PHRASE in context:
        p = max(p, 0.95)
    try:
        value = right(x, y) if rng.random() < p else slip(x, y)
    except ZeroDivisionError:
        value = right(x, y) + 1
    return SimOutput(text=f"[simulated {req.model.name}] Substituting x and y into the relation.\n{_form(value, rng)}")


def _form(v: Fraction, rng: random.Random) -> str:
    """One of the equivalent ways models write an exact value."""
    kind = rng.randrange(4)
    if kind == 0 or v.denominator == 1:
        return f"Final answer: {fmt(v)}"
    if kind == 1:
        return f"So the value is \\boxed{{\\frac{{{v.numerator}}}{{{v.denominator}}}}}."
    if kind == 2:
        return f"Final answer: {float(v):.12g}"
    return f"Final answer: ({v.numerator})/({v.denominator})"
