"""One episode: the scripted orchestrator's workflow for one document.

Each round: the challenger proposes an example; the quality verifier checks it; the weak solver
answers k times and the judge marks every answer; only if the weak solver did not already
disqualify it, the strong solver answers k times and is judged; the harness scores the marks and
applies the acceptance predicate. A rejection becomes feedback, grouped the way the paper groups it
("too easy: …", "failed on strong: …", "failed quality check: …"), and the challenger tries a new
angle, up to the round budget. An accepted example gets a final quality pass.

Models only propose: every score and every decision here is computed in code from the judge's
per-criterion marks (``rubric.score``, ``acceptance.decide``).

A call that fails for a reason outside the example (an endpoint down past its retries, a bad key,
an unknown model) aborts the episode with that :class:`CallError`, so the run does not record the
document as finished and a resume tries it again. Invalid output and a context too long for the
model are recorded in the round, and the challenger is asked for another example.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Literal

from autodata.acceptance import Decision, Preset, check_weak, decide
from autodata.documents import Document
from autodata.llm.runtime import ModelRuntime
from autodata.llm.types import CallError, Completion
from autodata.roles import challenger, judge, solver, verifier
from autodata.roles.schemas import ChallengerOutput
from autodata.rubric import RubricRules, score

Status = Literal["accepted", "exhausted"]


# Failures that belong to this round's example (the model's answer was unusable, or the example is
# too long for a model): recorded in the round, and the loop goes on. Every other failure (endpoint
# down, bad key, unknown model, a request the server rejects) says nothing about the document: the
# episode is aborted so the document is not stored as finished and a later run retries it.
ROUND_LEVEL_KINDS = frozenset({"invalid_output", "context_too_long"})


def aborts_episode(err: CallError) -> bool:
    return err.kind not in ROUND_LEVEL_KINDS


@dataclass(frozen=True, slots=True)
class Endpoints:
    challenger: str
    quality_verifier: str
    weak_solver: str
    strong_solver: str
    judge: str


@dataclass(frozen=True, slots=True)
class EpisodeSettings:
    endpoints: Endpoints
    preset: Preset
    max_rounds: int = 5
    k_weak: int = 3
    k_strong: int = 3
    weak_first: bool = True
    final_quality_check: bool = True
    weak_temperature: float | None = None
    strong_temperature: float | None = None
    challenger_instructions: str = ""
    verifier_instructions: str = ""
    rubric_rules: RubricRules = field(default_factory=RubricRules)


@dataclass(slots=True)
class Attempt:
    answer: str | None
    marks: list[int] | None
    score: float | None
    error: str | None = None
    evidence: list[str] | None = None  # the judge's quote per criterion, for reviewers

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"answer": self.answer, "marks": self.marks, "score": self.score}
        if self.evidence is not None:
            d["evidence"] = self.evidence
        if self.error:
            d["error"] = self.error
        return d


@dataclass(slots=True)
class Round:
    number: int
    example: dict[str, Any] | None = None
    quality: dict[str, Any] | None = None
    weak: list[Attempt] = field(default_factory=list)
    strong: list[Attempt] | None = None
    decision: Decision | None = None
    error: str | None = None
    feedback: list[str] = field(default_factory=list)  # what this round's rejection tells the challenger

    @property
    def accepted(self) -> bool:
        return self.decision is not None and self.decision.accepted

    def to_dict(self) -> dict[str, Any]:
        return {
            "round": self.number,
            "example": self.example,
            "quality": self.quality,
            "weak": [a.to_dict() for a in self.weak],
            "strong": None if self.strong is None else [a.to_dict() for a in self.strong],
            "decision": self.decision.to_dict() if self.decision else None,
            "error": self.error,
            "feedback": self.feedback,
        }


@dataclass(slots=True)
class Episode:
    document_id: str
    status: Status
    rounds: list[Round]

    @property
    def accepted_round(self) -> Round | None:
        return next((r for r in self.rounds if r.accepted), None)


def scores_of(attempts: list[Attempt]) -> list[float]:
    return [a.score for a in attempts if a.score is not None]


async def _attempts(
    runtime: ModelRuntime, s: EpisodeSettings, example: ChallengerOutput, strong: bool
) -> list[Attempt]:
    endpoint = s.endpoints.strong_solver if strong else s.endpoints.weak_solver
    answers = await solver.solve(
        runtime,
        endpoint,
        example.context,
        example.question,
        k=s.k_strong if strong else s.k_weak,
        role="strong_solver" if strong else "weak_solver",
        temperature=s.strong_temperature if strong else s.weak_temperature,
    )
    weights = [r.weight for r in example.rubric]

    async def judged(i: int, answer: Completion | CallError) -> Attempt:
        if isinstance(answer, CallError):
            if aborts_episode(answer):
                raise answer  # the endpoint is down: abort the episode, a resume retries the document
            return Attempt(None, None, None, error=f"solver: {answer}")
        if not answer.text.strip() and answer.finish_reason == "length":
            # nothing to judge: scoring it 0 would make a model that ran out of tokens (often a reasoning
            # model spending its budget on thinking) look like a model that failed the question
            return Attempt(
                None,
                None,
                None,
                error="solver: empty answer cut off by the token limit; raise max_tokens for this model",
            )
        try:
            marking = await judge.mark(
                runtime, s.endpoints.judge, example.question, example.rubric, answer.text, sample=i
            )
        except CallError as err:
            if aborts_episode(err):
                raise
            return Attempt(answer.text, None, None, error=f"judge: {err}")
        return Attempt(answer.text, marking.marks, score(weights, marking.marks), evidence=marking.evidence)

    results = await asyncio.gather(*(judged(i, a) for i, a in enumerate(answers)), return_exceptions=True)
    for r in results:  # every sibling has finished before an abort propagates
        if isinstance(r, BaseException):
            raise r
    return list(results)  # type: ignore[arg-type]


async def _verify(
    runtime: ModelRuntime, s: EpisodeSettings, doc: Document, example: ChallengerOutput, *, sample: int
) -> verifier.QualityReport:
    return await verifier.verify(
        runtime,
        s.endpoints.quality_verifier,
        doc,
        example,
        instructions=s.verifier_instructions,
        rules=s.rubric_rules,
        sample=sample,
    )


def _feedback(decision: Decision) -> list[str]:
    return [r.message for r in decision.reasons]


async def run_episode(runtime: ModelRuntime, doc: Document, s: EpisodeSettings) -> Episode:
    rounds: list[Round] = []
    history: list[str] = []
    for n in range(s.max_rounds):
        rnd = Round(number=n)
        rounds.append(rnd)
        try:
            proposal = await challenger.propose(
                runtime,
                s.endpoints.challenger,
                doc,
                instructions=s.challenger_instructions,
                feedback=history,
                round_no=n,
                rules=s.rubric_rules,
            )
        except CallError as err:
            if aborts_episode(err):
                raise
            rnd.error = f"challenger: {err}"
            rnd.feedback = (
                ["the example was too long for a model to read; write a shorter context"]
                if err.kind == "context_too_long"
                else ["the previous answer could not be used (invalid or missing fields); follow the format"]
            )
            history += [f"round {n + 1}: {line}" for line in rnd.feedback]
            continue
        example: ChallengerOutput = proposal.value
        rnd.example = example.model_dump()
        try:
            report = await _verify(runtime, s, doc, example, sample=n)
        except CallError as err:
            if aborts_episode(err):
                raise
            rnd.error = f"quality_verifier: {err}"
            continue
        rnd.quality = report.to_dict()
        if not report.passed:
            rnd.decision = decide(s.preset, quality_passed=False, weak=[], strong=None)
            why = ", ".join(report.issues) or "unspecified"
            rnd.feedback = [f"failed quality check: {why}: {report.feedback}".rstrip(": ")]
            history += [f"round {n + 1}: {line}" for line in rnd.feedback]
            continue
        rnd.weak = await _attempts(runtime, s, example, strong=False)
        weak_scores = scores_of(rnd.weak)
        if s.weak_first:
            early = check_weak(s.preset, weak_scores)
            if not early.accepted:
                rnd.decision = early
                rnd.feedback = _feedback(early)
                history += [f"round {n + 1}: {line}" for line in rnd.feedback]
                continue
        rnd.strong = await _attempts(runtime, s, example, strong=True)
        rnd.decision = decide(s.preset, quality_passed=True, weak=weak_scores, strong=scores_of(rnd.strong))
        if not rnd.decision.accepted:
            rnd.feedback = _feedback(rnd.decision)
            history += [f"round {n + 1}: {line}" for line in rnd.feedback]
            continue
        if s.final_quality_check:
            try:
                final = await _verify(runtime, s, doc, example, sample=1000 + n)  # its own cached call
            except CallError as err:
                if aborts_episode(err):
                    raise
                rnd.error = f"quality_verifier (final pass): {err}"
                rnd.decision = decide(s.preset, quality_passed=False, weak=[], strong=None)
                continue
            rnd.quality = {**report.to_dict(), "final": final.to_dict()}
            if not final.passed:
                rnd.decision = decide(s.preset, quality_passed=False, weak=[], strong=None)
                rnd.feedback = [f"failed quality check (final pass): {', '.join(final.issues)}: {final.feedback}"]
                history += [f"round {n + 1}: {line}" for line in rnd.feedback]
                continue
        return Episode(doc.id, "accepted", rounds)
    return Episode(doc.id, "exhausted", rounds)
