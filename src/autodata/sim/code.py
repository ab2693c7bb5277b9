"""Simulated roles of the ``code`` profile: a code-writing challenger and solvers whose code really runs.

The challenger (schema ``CodeTaskOutput``) picks a task of :mod:`autodata.sim.code_bank` whose
latent difficulty lands nearest its target (the same target as the other challengers: structured
feedback and declared directives), grounds its statement in the document's key terms, and writes
the task's statement, signature, reference solution and hidden tests. Now and then it slips the way
real challengers do: tests that check nothing (a trivial stub passes them) or a reference with a bug
(it fails its own tests); the pre-solver check must catch both.

The solver (free text; identified by its ``<question>`` block naming a function of the bank in
backticks, as the code profile's question does) writes the correct solution with probability
``0.05 + 0.9 sigmoid(8 (s - d))`` for skill ``s`` and difficulty ``d``, else one of the task's
realistic bugs (an off-by-one, a missing edge case, a wrong type), in a fenced Python block. Now and
then a weak model answers in prose without code (an attempt error, not a 0). Nothing here decides a
score: the code runs against the tests in the sandbox.
"""

from __future__ import annotations

import re

from autodata.sim.base import SimOutput, SimRequest, structured
from autodata.sim.code_bank import BANK, BY_NAME, CodeTask
from autodata.sim.roles import key_terms, sigmoid, target

FLAWED_RATE = 0.10  # share of tasks with a vacuous test suite or a broken reference
NO_CODE_RATE = 0.03  # share of a weak model's answers without code
_NAMED = re.compile(r"`([A-Za-z_][A-Za-z0-9_]*)`")


def task_of(question: str | None) -> CodeTask | None:
    """The bank task a question asks for (a function of the bank named in backticks), or None."""
    for name in _NAMED.findall(question or ""):
        if name in BY_NAME:
            return BY_NAME[name]
    return None


def challenger(req: SimRequest) -> SimOutput:
    rng = req.rng
    a, b = key_terms(req.inputs["document"], rng, 2)
    aim = target(req.inputs, rng)
    jitter = {t.name: rng.uniform(-0.08, 0.08) for t in BANK}  # documents differ: so does the nearest task
    task = min(BANK, key=lambda t: abs(t.difficulty + jitter[t.name] - aim))
    reference, tests = task.reference, task.tests
    if rng.random() < FLAWED_RATE:  # a slip: tests that check nothing, or a reference with a bug
        if task.weak_tests and rng.random() < 0.5:
            tests = task.weak_tests
        else:
            reference = task.broken_reference or task.bugs[rng.choice(sorted(task.bugs))]
    value = {
        "question_type": rng.choice(["algorithm", "data transformation", "validation", "parsing"]),
        "reasoning_skills": ["edge cases", "specification reading", "Python"],
        "statement": f"{task.statement} (This helper supports tooling around {a} and {b}.)",
        "signature": task.signature,
        "reference_solution": reference,
        "tests": tests,
    }
    return structured(req, value)


def solver(req: SimRequest) -> SimOutput:
    """A solver on a task of the bank (:func:`task_of` of its question)."""
    task = task_of(req.inputs["question"])
    assert task is not None
    rng = req.rng
    skill = req.model.skill
    if rng.random() < NO_CODE_RATE * (1.5 - skill):
        return SimOutput(
            text=f"[simulated {req.model.name}] I would loop over the input and handle the edge cases first."
        )
    p = 0.05 + 0.9 * sigmoid(8.0 * (skill - task.difficulty))
    if rng.random() < p:
        code, note = task.reference, "Here is the implementation."
    else:
        kind = rng.choice(sorted(task.bugs))
        code, note = task.bugs[kind], "Here is my implementation."
    return SimOutput(text=f"[simulated {req.model.name}] {note}\n\n```python\n{code}```\n")
