"""Scorers: how one solver answer becomes marks and a score, chosen by name by each profile.

A profile names its scorer (``Profile.scorer``); :func:`scorer` returns it from :data:`SCORERS`, an
explicit table. Each scorer states what the rest of the product needs to know about it, so nothing
outside this package branches on "is this the exact-answer profile":

- ``needs_judge``: whether scoring calls the judge model (the run then requires the ``judge`` role);
- ``reward_style``: how an RL trainer should reward an answer to an exported example — ``"rubric"``
  (a judge marks the rubric, as here) or ``"rule"`` (a rule-based check, e.g. answer equivalence or
  unit tests), the vocabulary of verl's ``reward_model.style`` field;
- ``short_answer``: whether the example's reference is one short final value (the challenger is asked
  for one, and the quality verifier checks it is at most ``max_reference_chars`` on one line instead of
  applying the rubric rules);
- ``needs_sandbox``: answers run as code (the run needs a ``sandbox`` section);
- ``challenger_rubric``: whether the challenger writes the rubric (False: the scorer's own);
- :meth:`Scorer.harness_rubric`: the rubric the harness gives every short-answer example when the
  scorer, not the challenger, defines what is checked (exact answers: one criterion), else None;
- :meth:`Scorer.agreement`: what the strong attempts agree on (exact answers: the majority final
  answer by equivalence), recorded with the round; None when the scorer has no such notion;
- :meth:`Scorer.check_example`: problems found in code before any solver is asked (code: the
  reference must pass its tests, trivial stubs must fail them).

Scorers here:

- :class:`RubricJudge` (``rubric-judge``): the judge marks each criterion 0/1 and
  :func:`autodata.judging.rubric.score` computes the number;
- :class:`ExactAnswer` (``exact-answer``): the answer's final value is compared with the reference
  in code (:func:`autodata.judging.verifiable.equivalent`); the score is 1 or 0, no model is called.
- :class:`~autodata.judging.code.CodeTests` (``code-tests``): the answer's code runs against the
  example's hidden unit tests in the sandbox; the score is the fraction of tests passed, no model is
  called; an answer without code is an attempt error (:class:`Unscorable`).

Extension point (a code profile whose answers are checked by unit tests): subclass :class:`Scorer`,
set ``name``, ``reward_style = "rule"`` and ``needs_judge = False``, implement :meth:`Scorer.score`
(read what it needs from the example, run it, return :class:`Scored` with ``marks=[1 or 0]``), add
it to :data:`SCORERS` and name it in a profile. The file lands in this package, so the frozen hash
covers it like every other scorer.

The loop judge's verdict is mapped onto the acceptance predicate's input here too
(:func:`loop_judge_verdict`): no verdict is never an accept.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Protocol

from autodata.judging import judge, rubric
from autodata.judging.code import CODE_MIN_TESTS, run_details, summary_line
from autodata.judging.constraints import check, describe
from autodata.judging.schemas import RubricItem
from autodata.judging.verifiable import equivalent, final_answer
from autodata.llm.runtime import ModelRuntime
from autodata.sandbox import SandboxExecutor
from autodata.sandbox.tasks import check_task, extract_code

RewardStyle = Literal["rubric", "rule"]

# The one-criterion rubric of an exact-answer example: the harness, not a judge, marks it.
EXACT_CRITERION = "the final answer equals the reference answer (checked in code)"
MAX_SHORT_ANSWER_CHARS = 80  # an exact answer's reference: one short final value or expression


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
    details: dict[str, Any] | None = None  # what a rule-based scorer measured (e.g. the sandbox run)


class Unscorable(Exception):
    """The answer holds nothing this scorer can score (e.g. no code in a code answer, or the sandbox
    itself failed): an *attempt error*, recorded with this reason and never scored as 0."""


class Scorer:
    """The interface every scorer implements; see the module docstring for the attributes' meaning."""

    name: ClassVar[str]
    reward_style: ClassVar[RewardStyle]
    needs_judge: ClassVar[bool]
    short_answer: ClassVar[bool] = False
    needs_sandbox: ClassVar[bool] = False  # answers run as code: the run needs ``sandbox`` (autodata.sandbox)
    challenger_rubric: ClassVar[bool] = True  # False: the rubric is the scorer's own; rubric rules do not apply
    max_reference_chars: ClassVar[int | None] = None
    judge_sees_context: bool = False  # loop.judge_sees_context: the judge gets the example's context, fenced

    def with_judge_context(self, on: bool) -> Scorer:
        """This scorer with ``judge_sees_context`` set (a copy when it changes; scorers are shared)."""
        if on == self.judge_sees_context:
            return self
        other = copy.copy(self)
        other.judge_sees_context = on
        return other

    def judge_context(self, example: Any) -> str | None:
        """The context the judge is shown: the example's, when ``judge_sees_context``; else none."""
        return (getattr(example, "context", None) or None) if self.judge_sees_context else None

    async def judge_marks(
        self,
        runtime: ModelRuntime,
        judge_endpoint: str | None,
        example: Any,
        criteria: Sequence[RubricItem],
        answer: str,
        *,
        sample: int,
    ) -> judge.Marking:
        """The judge's marks of ``answer`` on ``criteria``, asked with the example's question (and its
        context when ``judge_sees_context``). Raises ValueError when the run has no judge endpoint."""
        if judge_endpoint is None:
            raise ValueError(f"the {self.name} scorer needs a judge endpoint for its rubric")
        return await judge.mark(
            runtime,
            judge_endpoint,
            example.question,
            criteria,
            answer,
            sample=sample,
            context=self.judge_context(example),
        )

    def harness_rubric(self) -> list[RubricItem] | None:
        """The rubric every short-answer example gets from the harness, or None when the challenger writes it."""
        return None

    def agreement(self, extracted: Sequence[str], reference: str) -> dict[str, Any] | None:
        """What the strong attempts' ``Scored.extracted`` answers agree on; None when not applicable."""
        return None

    sft_min_score: ClassVar[float | None] = None  # SFT imitates a strong answer only at this score or above

    def configured(self, sandbox: Any = None) -> Scorer:
        """This scorer bound to the run's resources (a sandbox executor); most scorers need none."""
        return self

    def ground_truth(self, record: dict[str, Any]) -> str:
        """What an exported RL row's reward checks an answer against (verl ``reward_model.ground_truth``)."""
        return str(record.get("reference_answer") or "")

    def reference_as_answer(self, record: dict[str, Any]) -> str:
        """The reference written as a solver's answer would be (an SFT target when no attempt qualifies)."""
        return str(record.get("reference_answer") or "")

    async def check_example(self, example: Any) -> tuple[list[str], dict[str, Any] | None]:
        """Problems with an example found in code before any solver is asked, and what was measured.
        Default: none (the quality verifier's rubric rules and model check do the work)."""
        return [], None

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
        marking = await self.judge_marks(runtime, judge_endpoint, example, example.rubric, answer, sample=sample)
        weights = [r.weight for r in example.rubric]
        return Scored(marking.marks, rubric.score(weights, marking.marks), evidence=marking.evidence)


class ExactAnswer(Scorer):
    """The final answer equals the reference (numerically, as an expression, or as normalised text)."""

    name = "exact-answer"
    reward_style = "rule"
    needs_judge = False
    short_answer = True
    max_reference_chars = MAX_SHORT_ANSWER_CHARS

    def harness_rubric(self) -> list[RubricItem]:
        return [RubricItem(criterion=EXACT_CRITERION, weight=1, category="exact answer")]

    def agreement(self, extracted: Sequence[str], reference: str) -> dict[str, Any]:
        """The strong solver's majority final answer (by equivalence), its votes out of the attempts with
        an answer, and whether it matches the reference."""
        top, votes = majority(extracted)
        return {
            "majority_answer": top,
            "votes": votes,
            "of": len(extracted),
            "matches_reference": top is not None and equivalent(top, reference),
        }

    async def score(
        self, runtime: ModelRuntime, judge_endpoint: str | None, example: Scorable, answer: str, *, sample: int
    ) -> Scored:
        right = int(equivalent(answer, example.reference_answer))
        return Scored([right], float(right), extracted=final_answer(answer))


class CodeTests(Scorer):
    """Fraction of hidden unit tests passed, in the sandbox (see :mod:`autodata.judging.code`)."""

    name = "code-tests"
    reward_style = "rule"
    needs_judge = False
    needs_sandbox = True
    challenger_rubric = False
    sft_min_score = 1.0  # SFT rows imitate a solution that passed every test (else the reference solution)

    def ground_truth(self, record: dict[str, Any]) -> str:
        """The hidden unit tests (an RL reward runs the answer's code against them in the sandbox)."""
        return str((record.get("code") or {}).get("tests") or "")

    def reference_as_answer(self, record: dict[str, Any]) -> str:
        """The reference solution in the fenced block the solver prompt asks for."""
        return f"```python\n{str(record.get('reference_answer') or '').rstrip()}\n```"

    def __init__(self, sandbox: SandboxExecutor | None = None) -> None:
        self._sandbox = sandbox

    def configured(self, sandbox: Any = None) -> Scorer:
        return CodeTests(sandbox) if sandbox is not None else self

    @property
    def sandbox(self) -> SandboxExecutor:
        if self._sandbox is None:  # the default sandbox (bubblewrap) when a caller configured none
            from autodata.sandbox import make_executor

            self._sandbox = make_executor("bwrap")
        return self._sandbox

    async def score(
        self, runtime: ModelRuntime, judge_endpoint: str | None, example: Any, answer: str, *, sample: int
    ) -> Scored:
        code = extract_code(answer, getattr(example, "entry_point", "") or None)
        if code is None:
            raise Unscorable("no Python code in the answer (neither a fenced block nor a module defining a function)")
        r = await self.sandbox.arun(code, example.tests)
        if r.infra_error:
            raise Unscorable(f"the sandbox failed (not the answer's fault): {r.infra_error}")
        return Scored([int(r.all_passed)], r.pass_rate, extracted=code, evidence=[summary_line(r)],
                      details=run_details(r))  # fmt: skip

    async def check_example(self, example: Any) -> tuple[list[str], dict[str, Any] | None]:
        try:
            problems, runs = await check_task(
                self.sandbox,
                example.reference_answer,
                example.tests,
                signature=getattr(example, "signature", ""),
                min_tests=CODE_MIN_TESTS,
            )
        except RuntimeError as err:
            raise Unscorable(f"the sandbox failed while checking the task: {err}") from None
        return problems, {"runs": {k: run_details(v) for k, v in runs.items()}}


class InstructionChecks(Scorer):
    """The ``instruction`` profile: the example's checkable constraints are marked in code
    (:func:`autodata.judging.constraints.check`), the rest of its rubric by the judge; the rubric formula
    turns all marks into the score. The first ``len(example.constraints)`` criteria are the constraints."""

    name = "instruction-checks"
    reward_style = "rubric"
    needs_judge = True
    challenger_rubric = False  # the constraint criteria are the harness's; check_example checks the rest

    async def score(
        self, runtime: ModelRuntime, judge_endpoint: str | None, example: Any, answer: str, *, sample: int
    ) -> Scored:
        constraints = list(example.constraints)
        met = [int(check(c, answer)) for c in constraints]
        rest = example.rubric[len(constraints) :]
        judged: list[int] = []
        evidence = ["met (checked in code)" if m else "not met (checked in code)" for m in met]
        if rest:
            marking = await self.judge_marks(runtime, judge_endpoint, example, rest, answer, sample=sample)
            judged, evidence = marking.marks, evidence + marking.evidence
        marks = met + judged
        weights = [r.weight for r in example.rubric]
        details = {"constraints": [{"kind": c.kind, "met": bool(m)} for c, m in zip(constraints, met, strict=True)]}
        return Scored(marks, rubric.score(weights, marks), evidence=evidence, details=details)

    async def check_example(self, example: Any) -> tuple[list[str], dict[str, Any] | None]:
        problems = [
            f"the reference answer does not meet its own constraint: {describe(c)}"
            for c in example.constraints
            if not check(c, example.reference_answer)
        ]
        rest = example.rubric[len(example.constraints) :]
        if not any(r.weight > 0 for r in rest):
            problems.append("the rubric needs at least one positive criterion beyond the checked constraints")
        return problems, None


SCORERS: dict[str, Scorer] = {s.name: s for s in (RubricJudge(), ExactAnswer(), CodeTests(), InstructionChecks())}


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
