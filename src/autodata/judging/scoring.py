"""Scorers: how one solver answer becomes marks and a score, chosen by name by each profile.

A profile names its scorer (``Profile.scorer``); :func:`scorer` returns it from :data:`SCORERS`, an
explicit table. Each scorer states what the rest of the product needs to know about it, so nothing
outside this package branches on "is this the exact-answer profile":

- ``needs_judge``: whether scoring calls the judge model (the run then requires the ``judge`` role);
- ``reward_style``: how an RL trainer should reward an answer to an exported example — ``"rubric"``
  (a judge marks the rubric, as here) or ``"rule"`` (a rule-based check, e.g. answer equivalence or
  unit tests), the vocabulary of verl's ``reward_model.style`` field;
- ``short_answer``: whether the example's reference is one short final value (the challenger is asked
  for one, and the quality verifier checks its length instead of the rubric rules).

Scorers here:

- :class:`RubricJudge` (``rubric-judge``): the judge marks each criterion 0/1 and
  :func:`autodata.judging.rubric.score` computes the number;
- :class:`ExactAnswer` (``exact-answer``): the answer's final value is compared with the reference
  in code (:func:`autodata.judging.verifiable.equivalent`); the score is 1 or 0, no model is called.

Extension point (a code profile whose answers are checked by unit tests): subclass :class:`Scorer`,
set ``name``, ``reward_style = "rule"`` and ``needs_judge = False``, implement :meth:`Scorer.score`
(read what it needs from the example, run it, return :class:`Scored` with ``marks=[1 or 0]``), add
it to :data:`SCORERS` and name it in a profile. The file lands in this package, so the frozen hash
covers it like every other scorer.

The loop judge's verdict is mapped onto the acceptance predicate's input here too
(:func:`loop_judge_verdict`): no verdict is never an accept.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Protocol

from autodata.judging import judge, rubric
from autodata.judging.schemas import RubricItem
from autodata.judging.verifiable import equivalent, final_answer
from autodata.llm.runtime import ModelRuntime

RewardStyle = Literal["rubric", "rule"]


class Scorable(Protocol):
    """What a scorer reads of an example (``autodata.roles.schemas.ChallengerOutput`` has these fields)."""

    question: str
    reference_answer: str
    rubric: list[RubricItem]


@dataclass(slots=True)
class Scored:
    """One answer's marks (aligned with the example's rubric, each 0 or 1) and its score in [0, 1].

    ``extracted`` is the final answer a rule-based scorer compared; ``evidence`` the judge's quote per
    criterion.
    """

    marks: list[int]
    score: float
    extracted: str | None = None
    evidence: list[str] | None = None


class Scorer:
    """The interface every scorer implements; see the module docstring for the attributes' meaning."""

    name: ClassVar[str]
    reward_style: ClassVar[RewardStyle]
    needs_judge: ClassVar[bool]
    short_answer: ClassVar[bool] = False

    async def score(
        self, runtime: ModelRuntime, judge_endpoint: str | None, example: Scorable, answer: str, *, sample: int
    ) -> Scored:
        """Score one answer. Raises ``autodata.llm.types.CallError`` when a model call fails for good
        (the caller decides whether that aborts the episode or is recorded in the round)."""
        raise NotImplementedError


class RubricJudge(Scorer):
    """The judge marks every rubric criterion met or not; the rubric formula turns marks into the score."""

    name = "rubric-judge"
    reward_style = "rubric"
    needs_judge = True

    async def score(
        self, runtime: ModelRuntime, judge_endpoint: str | None, example: Scorable, answer: str, *, sample: int
    ) -> Scored:
        if judge_endpoint is None:
            raise ValueError("the rubric-judge scorer needs a judge endpoint")
        marking = await judge.mark(runtime, judge_endpoint, example.question, example.rubric, answer, sample=sample)
        weights = [r.weight for r in example.rubric]
        return Scored(marking.marks, rubric.score(weights, marking.marks), evidence=marking.evidence)


class ExactAnswer(Scorer):
    """The final answer equals the reference (numerically, as an expression, or as normalised text)."""

    name = "exact-answer"
    reward_style = "rule"
    needs_judge = False
    short_answer = True

    async def score(
        self, runtime: ModelRuntime, judge_endpoint: str | None, example: Scorable, answer: str, *, sample: int
    ) -> Scored:
        right = int(equivalent(answer, example.reference_answer))
        return Scored([right], float(right), extracted=final_answer(answer))


SCORERS: dict[str, Scorer] = {s.name: s for s in (RubricJudge(), ExactAnswer())}


def scorer(name: str) -> Scorer:
    """The scorer a profile names; ``ValueError`` naming the known scorers when there is none."""
    try:
        return SCORERS[name]
    except KeyError:
        raise ValueError(f"unknown scorer {name!r}; expected one of: {', '.join(SCORERS)}") from None


def loop_judge_verdict(record: dict[str, Any] | None) -> tuple[Literal["accept", "improve"], tuple[str, ...]]:
    """The loop judge's stored verdict as the predicate reads it: a usable ``accept``/``improve`` with its
    reasons, else ``improve`` with the reason it was unusable (only the loop judge can say accept)."""
    lj = record or {}
    if lj.get("verdict") in ("accept", "improve"):
        return lj["verdict"], tuple(lj.get("reasons") or ())
    return "improve", (f"the loop judge gave no usable verdict ({lj.get('error')})",)


def majority(answers: Sequence[str]) -> tuple[str | None, int]:
    """The most common final answer by equivalence (not by string), and how many attempts gave it."""
    groups: list[list[str]] = []
    for a in answers:
        for g in groups:
            if equivalent(a, g[0]):
                g.append(a)
                break
        else:
            groups.append([a])
    if not groups:
        return None, 0
    best = max(groups, key=len)
    return best[0], len(best)
