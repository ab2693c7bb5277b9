"""One episode: the workflow for one document, and the steps both orchestrators share.

Each round: the challenger proposes an example; the quality verifier checks it; the weak solver
answers k times and every answer is scored (by the judge's per-criterion marks, or, for exact-answer
profiles, by an equivalence check in code); only if the weak solver did not already disqualify it,
the strong solver answers k times and is scored; for the ``judge`` preset a loop judge reads the
evaluation; the harness applies the acceptance predicate. A rejection becomes feedback, grouped the
way the paper groups it ("too easy: …", "failed on strong: …", "failed quality check: …"), and the
challenger tries a new angle, up to the round budget. An accepted example gets a final quality pass.

:class:`Steps` holds those operations. The scripted orchestrator (:func:`run_scripted_episode`) calls them in
the paper's fixed order; the agent orchestrator (``loop.agent``) lets a model choose the order and
write the feedback, but calls the very same steps, so every score and every decision is computed in
code (``rubric.score``, ``acceptance.decide``) whichever orchestrator runs.

A call that fails for a reason outside the example (an endpoint down past its retries, a bad key,
an unknown model, a context too long for the model) aborts the episode with that :class:`CallError`,
so the run does not record the document as finished and a resume tries it again; a server error is
never a verdict on the document, and the challenger is never told about one.

Attempt errors. A solver reply that holds no usable answer (``Completion.problem`` set by the
runtime: a content filter, a provider error inside the choice, reasoning without an answer, an
unclosed ``<think>``; or an empty answer), and a judge that gives no valid marks for an answer, make
an *attempt error*: recorded with its reason in the attempt, never judged, never scored. The
acceptance test only ever sees valid attempts, and needs ``min_valid`` of them per side (default: all
k). Missing ones are re-sampled with new sample indices (at most ``max_resamples`` waves); when that
is not enough the episode ends with :class:`NoEvidence` and the document fails for this session --
it is never accepted or rejected on missing evidence. The quality verifier and the loop judge are
re-asked the same way. A challenger whose answer is invalid spends its round (the format feedback
it gets is true), but an episode in which no round reached a verdict is not ``exhausted``: it fails
for this session too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, Literal

from autodata.config import Config
from autodata.documents import Document
from autodata.errors import UserError
from autodata.judging import loop_judge, solver
from autodata.judging.acceptance import Decision, Preset, check_weak, decide, preset, strong_settled, weak_settled
from autodata.judging.rubric import RubricRules
from autodata.judging.scoring import Unscorable, loop_judge_verdict
from autodata.llm.runtime import ModelRuntime
from autodata.llm.types import CallError, Completion, StructuredResult
from autodata.loop.profile import PROFILES, Profile, profile
from autodata.roles import challenger, verifier
from autodata.roles.schemas import ChallengerOutput, ExampleSource, ShortAnswerOutput

Status = Literal["accepted", "exhausted"]


# Failures of one model answer (no valid structured output within the repair budget): recorded where
# they happened (the round, or the attempt) and re-sampled. Every other failure (endpoint down past its
# retries, bad key, unknown model, a context too long for the model, a request the server rejects)
# says nothing about the document: the episode is aborted so the document is not stored as finished
# and a later run retries it (a context too long is first re-fitted to a smaller budget, loop.run).
ROUND_LEVEL_KINDS = frozenset({"invalid_output"})

RESAMPLE_STRIDE = 100  # sample index step between re-asks of a verifier or loop judge (rounds < 100)


def aborts_episode(err: CallError) -> bool:
    return err.kind not in ROUND_LEVEL_KINDS


class NoEvidence(CallError):
    """A round could not gather the valid answers the acceptance test needs (re-samples spent), or
    no round of the episode reached a verdict. Not a verdict: the document fails for this session."""

    def __init__(self, message: str) -> None:
        super().__init__(message, kind="no_evidence")


FINAL_PASS_SAMPLE = 1000  # the final quality pass's sample indices start here (max_resamples <= 8 keeps them apart)
FIRST_WAVE = 2  # adaptive stopping: solver attempts drawn before the first look at the verdict


@dataclass(frozen=True, slots=True)
class Endpoints:
    challenger: str
    quality_verifier: str
    weak_solver: str
    strong_solver: str
    judge: str | None = None  # not needed when answers are checked in code
    loop_judge: str | None = None  # the judge preset's accept/improve reviewer
    orchestrator: str | None = None  # the agent orchestrator's model

    def roles(self) -> dict[str, str]:
        """Role -> endpoint name for every role this run uses (the ones set)."""
        return {f.name: v for f in fields(self) if (v := getattr(self, f.name)) is not None}

    def names(self) -> list[str]:
        """The endpoints this run calls, sorted, each once."""
        return sorted(set(self.roles().values()))


# Hooks for callers that put another writer in the challenger's seat (the baselines) and reuse the rest of
# the workflow unchanged. A proposer gets (runtime, document, round number, feedback so far); a grounding
# function names the document the quality verifier checks an example against.
Proposer = Callable[[ModelRuntime, Document, int, Sequence[str]], Awaitable[StructuredResult]]
Grounding = Callable[[Document, ChallengerOutput], Document]


BASE_ROLES = ("challenger", "quality_verifier", "weak_solver", "strong_solver")


def run_preset(cfg: Config) -> Preset:
    loop = cfg.loop
    return preset(loop.acceptance.preset or profile(loop.profile).preset, **loop.acceptance.overrides)


def run_roles(cfg: Config) -> dict[str, str]:
    """Role -> endpoint for what this config runs: the judge only when a judge marks answers, the
    loop judge (falling back to the judge's model) for the judge preset, the orchestrator in agent mode."""
    needed = list(BASE_ROLES)
    prof = profile(cfg.loop.profile)
    loop_judge = run_preset(cfg).judge_loop
    if prof.scoring.needs_judge or (loop_judge and "loop_judge" not in cfg.roles):
        needed.append("judge")
    if cfg.loop.orchestrator == "agent":
        needed.append("orchestrator")
    roles = cfg.require_roles(tuple(needed), "autodata run")
    if loop_judge:
        roles["loop_judge"] = cfg.roles.get("loop_judge") or roles["judge"]  # type: ignore[call-overload]
    return roles


def sandbox_for(cfg: Config) -> Any:
    """The sandbox executor of a profile whose scorer runs code, checked usable here; None otherwise.

    Raises :class:`~autodata.errors.UserError` naming the fix when it cannot run (``bwrap`` missing:
    the install command, or the explicit opt-in ``sandbox.kind: subprocess``)."""
    if not profile(cfg.loop.profile).scoring.needs_sandbox:
        return None
    from autodata.sandbox import SandboxUnavailable, executor_from_config

    executor = executor_from_config(cfg.sandbox)
    try:
        executor.check()
    except SandboxUnavailable as err:
        raise UserError(f"profile {cfg.loop.profile!r} runs generated code: {err}") from None
    return executor


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
    orchestrator_instructions: str = ""
    directives: tuple[str, ...] = ()  # declared directive names (config.DIRECTIVES), shown to the roles they name
    rubric_rules: RubricRules = field(default_factory=RubricRules)
    judge_sees_context: bool = False  # loop.judge_sees_context
    profile: Profile = PROFILES["rubric-qa"]
    orchestrator: Literal["scripted", "agent"] = "scripted"
    max_agent_steps: int = 40
    adaptive_stopping: bool = False  # draw solver attempts in waves and stop once the verdict is settled
    min_valid_weak: int | None = None  # valid (scored) weak attempts the acceptance test needs; None: k_weak
    min_valid_strong: int | None = None  # the same for the strong side; None: k_strong
    max_resamples: int = 2  # waves of new samples drawn to replace attempt errors (and verifier re-asks)
    propose: Proposer | None = None  # None: the challenger
    grounding: Grounding | None = None  # None: the source document
    sandbox: Any = None  # an ``autodata.sandbox.SandboxExecutor`` for scorers that run code (the code profile)

    @classmethod
    def from_config(cls, cfg: Config, *, roles: dict[str, str] | None = None, sandbox: Any = None) -> EpisodeSettings:
        """The run's settings from a config, its roles computed once (:func:`run_roles`, or ``roles`` when
        the caller already found them): every reader of a run (driver, pre-flight, recipe and frozen
        hashes, store records, executors) takes them from here (``endpoints.roles()``). ``sandbox``: the
        run's sandbox executor when already checked (:func:`sandbox_for`), e.g. for the same run's config
        under another recipe (a recipe changes neither roles nor sandbox).

        Raises ``ConfigError`` naming the missing role, ``UserError`` when the profile's sandbox cannot run.
        """
        roles = roles if roles is not None else run_roles(cfg)
        loop = cfg.loop
        prof = profile(loop.profile)
        return cls(
            sandbox=sandbox if sandbox is not None else sandbox_for(cfg),
            endpoints=Endpoints(**roles),
            preset=run_preset(cfg),
            max_rounds=loop.max_rounds,
            k_weak=loop.k_weak or prof.k_weak,
            k_strong=loop.k_strong or prof.k_strong,
            weak_first=loop.weak_first,
            adaptive_stopping=loop.adaptive_stopping,
            min_valid_weak=loop.min_valid_attempts,
            min_valid_strong=loop.min_valid_attempts,
            max_resamples=loop.max_resamples,
            final_quality_check=loop.final_quality_check,
            weak_temperature=loop.weak_temperature,
            strong_temperature=loop.strong_temperature,
            challenger_instructions=loop.challenger_instructions,
            verifier_instructions=loop.verifier_instructions,
            orchestrator_instructions=loop.orchestrator_instructions,
            directives=tuple(loop.directives),
            profile=prof,
            orchestrator=loop.orchestrator,
            max_agent_steps=loop.max_agent_steps,
            rubric_rules=loop.rubric.rules(),
            judge_sees_context=loop.judge_sees_context,
        )


@dataclass(slots=True)
class Attempt:
    answer: str | None
    marks: list[int] | None
    score: float | None
    error: str | None = None
    extracted: str | None = None  # exact-answer profiles: the final answer compared with the reference
    evidence: list[str] | None = None  # the judge's quote per criterion, for reviewers
    details: dict[str, Any] | None = None  # what a rule-based scorer measured (the code profile: the sandbox run)
    # the solver's reasoning as the server returned it (``Completion.reasoning``: reasoning_content /
    # reasoning / split-off think text): stored for audit and training, never shown to the judge
    reasoning: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"answer": self.answer, "marks": self.marks, "score": self.score}
        if self.reasoning:
            d["reasoning"] = self.reasoning
        if self.extracted is not None:
            d["extracted"] = self.extracted
        if self.evidence is not None:
            d["evidence"] = self.evidence
        if self.details is not None:
            d["details"] = self.details
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
    loop_judge: dict[str, Any] | None = None
    consistency: dict[str, Any] | None = None  # exact answers: the strong solver's majority answer
    instructions: str | None = None  # agent mode: what the orchestrator asked the challenger for

    @property
    def accepted(self) -> bool:
        return self.decision is not None and self.decision.accepted

    def to_dict(self) -> dict[str, Any]:
        d = {
            "round": self.number,
            "example": self.example,
            "quality": self.quality,
            "weak": [a.to_dict() for a in self.weak],
            "strong": None if self.strong is None else [a.to_dict() for a in self.strong],
            "decision": self.decision.to_dict() if self.decision else None,
            "error": self.error,
            "feedback": self.feedback,
        }
        for key in ("loop_judge", "consistency", "instructions"):
            if getattr(self, key) is not None:
                d[key] = getattr(self, key)
        return d


@dataclass(slots=True)
class Episode:
    document_id: str
    status: Status
    rounds: list[Round]
    orchestrator: str = "scripted"
    steps: list[dict[str, Any]] | None = None  # agent mode: every tool call and what it returned
    note: str | None = None  # why an agent episode ended without an example, when it did
    finished_round: int | None = None  # agent mode: the round a successful ``finish`` submitted

    @property
    def accepted_round(self) -> Round | None:
        """The round whose example the episode yields: none unless the episode was accepted.

        In agent mode a round can hold a passing decision that was never submitted (the agent moved
        on, or gave up): only the round ``finish`` accepted, after its final quality pass, counts.
        """
        if self.status != "accepted":
            return None
        if self.finished_round is not None:
            return self.rounds[self.finished_round]
        return next((r for r in self.rounds if r.accepted), None)


def scores_of(attempts: list[Attempt]) -> list[float]:
    return [a.score for a in attempts if a.score is not None]


def _raise_first(results: list[Any]) -> None:
    for r in results:  # every sibling has finished before an abort propagates
        if isinstance(r, BaseException):
            raise r


class Steps:
    """The operations of one episode on one document, shared by both orchestrators."""

    def __init__(self, runtime: ModelRuntime, doc: Document, s: EpisodeSettings) -> None:
        self.rt, self.doc, self.s = runtime, doc, s
        self.scorer = s.profile.scoring.configured(s.sandbox).with_judge_context(s.judge_sees_context)

    # ------------------------------------------------------------------ challenger

    async def propose(
        self, rnd: Round, feedback: list[str], items: Sequence[dict[str, Any]] = ()
    ) -> ChallengerOutput | None:
        """The round's example, or None with the error and feedback recorded in the round.

        ``feedback`` is the earlier rounds' feedback in words; ``items`` the same rounds as structured
        entries (:func:`feedback_item`), which the challenger's prompt shows as its ``<feedback>`` block.
        """
        s = self.s
        try:
            if s.propose is not None:
                proposal = await s.propose(self.rt, self.doc, rnd.number, feedback)
            else:
                proposal = await challenger.propose(
                    self.rt,
                    s.endpoints.challenger,
                    self.doc,
                    instructions=s.challenger_instructions,
                    feedback=feedback,
                    feedback_items=items,
                    directives=s.directives,
                    round_no=rnd.number,
                    rules=s.rubric_rules,
                    template=s.profile.challenger_template,
                    guidance=s.profile.guidance,
                    short_answer=self.scorer.short_answer,
                    output=s.profile.challenger_output,
                )
        except CallError as err:
            if aborts_episode(err):
                raise
            rnd.error = f"challenger: {err}"  # only invalid output gets here: the feedback is about the format
            rnd.feedback = ["the previous answer could not be used (invalid or missing fields); follow the format"]
            return None
        value = proposal.value
        if isinstance(value, ShortAnswerOutput):
            example = ChallengerOutput(
                question_type=value.question_type,
                reasoning_skills=value.reasoning_skills,
                context=value.context,
                question=value.question,
                reference_answer=value.reference_answer,
                rubric=self.scorer.harness_rubric() or [],
            )
            rnd.example = {**example.model_dump(), "solution": value.solution}
        elif isinstance(value, ExampleSource):  # an output that builds its own example (the code profile's task)
            example = value.to_example()
            rnd.example = example.model_dump()
        else:
            example = value
            rnd.example = example.model_dump()
        return example

    # ------------------------------------------------------------------ quality

    async def verify(self, example: ChallengerOutput, *, sample: int) -> verifier.QualityReport:
        """The scorer's own checks in code first (the code profile runs the reference and trivial stubs
        against the tests in the sandbox, before any solver), then the quality verifier."""
        try:
            problems, measured = await self.scorer.check_example(example)
        except Unscorable as err:  # the sandbox itself failed: no verdict on the example
            raise CallError(f"scorer check: {err}", kind="sandbox_unavailable") from None
        if problems:
            return verifier.QualityReport(False, ["tests_unsound"], "; ".join(problems), problems, measured)
        report = await verifier.verify(
            self.rt,
            self.s.endpoints.quality_verifier,
            self.s.grounding(self.doc, example) if self.s.grounding else self.doc,
            example,
            instructions=self.s.verifier_instructions,
            directives=self.s.directives,
            rules=self.s.rubric_rules,
            sample=sample,
            max_answer_chars=self.scorer.max_reference_chars,
            rubric_rules=self.scorer.challenger_rubric,
        )
        report.measured = measured
        return report

    async def _verify_resampled(
        self, rnd: Round, example: ChallengerOutput, *, base: int, what: str
    ) -> verifier.QualityReport:
        """The verifier's report, re-asked with new samples when its answer is invalid; NoEvidence when
        every re-ask failed (the verifier's fault, not the example's: no verdict, no feedback)."""
        errors: list[str] = []
        for j in range(self.s.max_resamples + 1):
            try:
                return await self.verify(example, sample=base + RESAMPLE_STRIDE * j)
            except CallError as err:
                if aborts_episode(err):
                    raise
                errors.append(str(err))
        rnd.error = f"{what}: {errors[-1]}"
        raise NoEvidence(f"round {rnd.number + 1}: {what} gave no usable report in {len(errors)} tries: {errors[-1]}")

    async def quality(self, rnd: Round, example: ChallengerOutput) -> bool:
        """Run the verifier; on failure the round carries the decision and the feedback."""
        report = await self._verify_resampled(rnd, example, base=rnd.number, what="quality_verifier")
        rnd.quality = report.to_dict()
        if not report.passed:
            rnd.decision = self._quality_failed()
            why = ", ".join(report.issues) or "unspecified"
            rnd.feedback = [f"failed quality check: {why}: {report.feedback}".rstrip(": ")]
        return report.passed

    def _quality_failed(self) -> Decision:
        return decide(self.s.preset, quality_passed=False, weak=[], strong=None)

    async def final_quality(self, rnd: Round, example: ChallengerOutput) -> bool:
        """A second, independent verifier pass on an accepted example (its own cached call)."""
        final = await self._verify_resampled(
            rnd, example, base=FINAL_PASS_SAMPLE + rnd.number, what="quality_verifier (final pass)"
        )
        rnd.quality = {**(rnd.quality or {}), "final": final.to_dict()}
        if not final.passed:
            rnd.decision = self._quality_failed()
            rnd.feedback = [f"failed quality check (final pass): {', '.join(final.issues)}: {final.feedback}"]
        return final.passed

    # ------------------------------------------------------------------ solvers

    async def attempts(
        self, example: ChallengerOutput, *, strong: bool, weak_mean: float | None = None
    ) -> list[Attempt]:
        """k attempts, at least ``min_valid`` of them scored; attempt errors are kept, with their reason.

        With adaptive stopping, attempts are drawn in waves until the verdict cannot change. Waves
        keep sample indices, so attempt i is the same call (and cache entry) either way: a stopped
        series is a prefix of the full one, and the accept/reject decision is the full one's
        (``acceptance.weak_settled`` / ``strong_settled`` only stop when every completion rejects;
        they are told the most valid attempts still to come, which is safe: fewer cannot change it).
        Attempt errors are replaced by new samples (indices k, k+1, ...) in at most ``max_resamples``
        waves; :class:`NoEvidence` when the side still has fewer than ``min_valid`` valid attempts.
        """
        s = self.s
        k = s.k_strong if strong else s.k_weak
        need = min(k, (s.min_valid_strong if strong else s.min_valid_weak) or k)
        out: list[Attempt] = []
        if not s.adaptive_stopping:
            out = await self._attempt_wave(example, strong=strong, first=0, n=k)
        else:
            wave = min(FIRST_WAVE, k)
            while len(out) < k:
                out += await self._attempt_wave(example, strong=strong, first=len(out), n=wave)
                drawn = scores_of(out)
                left = max(k - len(out), need - len(drawn))
                if left and (
                    strong_settled(s.preset, drawn, left, weak_mean if weak_mean is not None else 0.0)
                    if strong
                    else weak_settled(s.preset, drawn, left)
                ):
                    return out
                wave = 1
        for _ in range(s.max_resamples):
            missing = need - len(scores_of(out))
            if missing <= 0:
                break
            out += await self._attempt_wave(example, strong=strong, first=len(out), n=missing)
        valid = len(scores_of(out))
        if valid < need:
            side = "strong" if strong else "weak"
            why = "; ".join(sorted({a.error or "" for a in out if a.score is None}))
            raise NoEvidence(
                f"the {side} side has {valid} valid attempts of the {need} the acceptance test needs "
                f"({len(out) - valid} attempt errors after {s.max_resamples} re-samples: {why})"
            )
        return out

    async def _attempt_wave(self, example: ChallengerOutput, *, strong: bool, first: int, n: int) -> list[Attempt]:
        s = self.s
        # every attempt is in flight at once, and each is judged as soon as it returns
        answers = solver.solve_each(
            self.rt,
            s.endpoints.strong_solver if strong else s.endpoints.weak_solver,
            example.context,
            example.question,
            k=n,
            role="strong_solver" if strong else "weak_solver",
            temperature=s.strong_temperature if strong else s.weak_temperature,
            template=s.profile.solver_template,
            first_sample=first,
        )

        async def scored(i: int, pending: Awaitable[Completion | CallError]) -> Attempt:
            answer = await pending
            if isinstance(answer, CallError):
                if aborts_episode(answer):
                    raise answer  # the endpoint is down: abort the episode, a resume retries the document
                return Attempt(None, None, None, error=f"solver: {answer}")
            problem = answer_problem(answer)
            if problem is not None:
                # nothing to score: a 0 would make a reply without an answer (a content filter, a reasoning
                # model that spent its budget thinking) look like a model that failed the question
                return Attempt(None, None, None, error=f"solver: {problem}", reasoning=answer.reasoning)
            try:
                got = await self.scorer.score(self.rt, s.endpoints.judge, example, answer.text, sample=i)
            except Unscorable as err:  # e.g. no code in a code answer: an attempt error, never a 0
                return Attempt(answer.text, None, None, error=f"scorer: {err}", reasoning=answer.reasoning)
            except CallError as err:
                if aborts_episode(err):
                    raise
                # a judge that gives no valid marks is not a 0 mark: the attempt is unscored and re-sampled
                return Attempt(answer.text, None, None, error=f"judge: {err}", reasoning=answer.reasoning)
            return Attempt(
                answer.text,
                got.marks,
                got.score,
                extracted=got.extracted,
                evidence=got.evidence,
                details=got.details,
                reasoning=answer.reasoning,
            )

        results = await asyncio.gather(*(scored(first + i, a) for i, a in enumerate(answers)), return_exceptions=True)
        _raise_first(results)
        return list(results)  # type: ignore[arg-type]

    async def weak(self, rnd: Round, example: ChallengerOutput) -> Decision:
        """The weak attempts, and the weak-first verdict on them."""
        rnd.weak = await self.attempts(example, strong=False)
        return check_weak(self.s.preset, scores_of(rnd.weak))

    async def strong(self, rnd: Round, example: ChallengerOutput) -> Decision:
        """The strong attempts (and the loop judge, for the judge preset), then the full predicate."""
        weak_scores = scores_of(rnd.weak)
        weak_mean = sum(weak_scores) / len(weak_scores) if weak_scores else None
        rnd.strong = await self.attempts(example, strong=True, weak_mean=weak_mean)
        strong_scores = scores_of(rnd.strong)
        rnd.consistency = self.scorer.agreement(
            [a.extracted for a in rnd.strong if a.extracted is not None], example.reference_answer
        )
        if self.s.preset.judge_loop:
            lj = self.s.endpoints.loop_judge or self.s.endpoints.judge
            assert lj is not None
            errors: list[str] = []
            for j in range(self.s.max_resamples + 1):
                try:
                    v = await loop_judge.review(
                        self.rt,
                        lj,
                        example,
                        document_id=self.doc.id,
                        document=self.doc.text,
                        weak_marks=[a.marks for a in rnd.weak if a.marks is not None],
                        strong_marks=[a.marks for a in rnd.strong if a.marks is not None],
                        weak_scores=weak_scores,
                        strong_scores=strong_scores,
                        sample=rnd.number + RESAMPLE_STRIDE * j,
                    )
                except CallError as err:
                    if aborts_episode(err):
                        raise
                    errors.append(str(err))
                    continue
                rnd.loop_judge = v.model_dump()
                if errors:
                    rnd.loop_judge["errors"] = errors
                break
            else:  # a loop judge that gives no verdict is not an "improve": no verdict at all
                rnd.error = f"loop_judge: {errors[-1]}"
                raise NoEvidence(f"round {rnd.number + 1}: the loop judge gave no usable verdict: {errors[-1]}")
        return self.decision(rnd, quality_passed=True)

    def decision(self, rnd: Round, *, quality_passed: bool) -> Decision:
        """The predicate recomputed from what the round holds: pure, so it can be asked at any time."""
        if rnd.strong is None:
            return decide(self.s.preset, quality_passed=quality_passed, weak=scores_of(rnd.weak), strong=None)
        verdict: Literal["accept", "improve"] | None = None
        reasons: tuple[str, ...] = ()
        if self.s.preset.judge_loop:
            verdict, reasons = loop_judge_verdict(rnd.loop_judge)
        return decide(
            self.s.preset,
            quality_passed=quality_passed,
            weak=scores_of(rnd.weak),
            strong=scores_of(rnd.strong),
            judge_verdict=verdict,
            judge_reasons=reasons,
        )


def answer_problem(answer: Completion) -> str | None:
    """Why a reply holds no answer to score ("code: detail"), or None when it does.

    The runtime's ``Completion.problem`` first (set when the reply carried no usable answer), then
    what any reply can show: an answer that is empty or only whitespace.
    """
    if answer.problem:
        return answer.problem
    if not answer.text.strip():
        if answer.finish_reason == "length":
            return "truncated: empty answer cut off by the token limit; raise max_tokens for this model"
        return f"empty: the reply holds no answer text (finish_reason {answer.finish_reason})"
    return None


def reason_messages(decision: Decision) -> list[str]:
    """The feedback a rejected round gives the challenger: its reasons, in words."""
    return [r.message for r in decision.reasons]


def _mean(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


def feedback_item(rnd: Round) -> dict[str, Any] | None:
    """A rejected round as the challenger's ``<feedback>`` block lists it; None when it gave no feedback.

    ``{"round", "stage", "codes", "weak_mean", "strong_mean", "gap", "issues", "question_type", "question",
    "messages"}``: ``question_type`` and ``question`` are the round's own example (absent when the
    challenger's output could not be used), so the challenger sees what it tried; ``codes`` are
    ``acceptance.REASONS`` keys (``output_unusable`` when the challenger's own answer could not be
    used), means are in [0, 1] or null when that solver did not run, ``issues`` are the
    quality verifier's. These entries are a stable contract: programs read them, not the messages.
    """
    if not rnd.feedback:
        return None
    d = rnd.decision
    item: dict[str, Any] = {"round": rnd.number + 1}
    if d is not None:
        item.update(
            stage=d.stage,
            codes=d.codes,
            weak_mean=_mean(d.weak_mean),
            strong_mean=_mean(d.strong_mean),
            gap=_mean(d.gap),
        )
    else:  # the challenger's own answer could not be used
        item.update(stage="challenger", codes=["output_unusable"])
    if rnd.quality and not rnd.quality.get("passed", True):
        item["issues"] = list(rnd.quality.get("issues") or [])
    if rnd.example:
        item["question_type"] = str(rnd.example.get("question_type") or "")
        item["question"] = str(rnd.example.get("question") or "")
    item["messages"] = list(rnd.feedback)
    return item


def feedback_items(rounds: Sequence[Round]) -> list[dict[str, Any]]:
    """The structured feedback of these rounds, in order (rounds without feedback left out)."""
    return [item for item in map(feedback_item, rounds) if item is not None]


async def run_scripted_episode(runtime: ModelRuntime, doc: Document, s: EpisodeSettings) -> Episode:
    """The paper's fixed workflow, as a state machine."""
    steps = Steps(runtime, doc, s)
    rounds: list[Round] = []
    history: list[str] = []
    for n in range(s.max_rounds):
        rnd = Round(number=n)
        rounds.append(rnd)
        accepted = await _scripted_round(steps, rnd, history, feedback_items(rounds[:-1]))
        history += [f"round {n + 1}: {line}" for line in rnd.feedback]
        if accepted:
            return Episode(doc.id, "accepted", rounds)
    if all(r.decision is None for r in rounds):  # every round ended in an error: that is no verdict
        raise NoEvidence(f"no round reached a verdict in {len(rounds)} rounds; last error: {rounds[-1].error}")
    return Episode(doc.id, "exhausted", rounds)


async def _scripted_round(steps: Steps, rnd: Round, history: list[str], items: list[dict[str, Any]]) -> bool:
    example = await steps.propose(rnd, history, items)
    if example is None or not await steps.quality(rnd, example):
        return False
    early = await steps.weak(rnd, example)
    if steps.s.weak_first and not early.accepted:
        rnd.decision = early
        rnd.feedback = reason_messages(early)
        return False
    rnd.decision = await steps.strong(rnd, example)
    if not rnd.decision.accepted:
        rnd.feedback = reason_messages(rnd.decision)
        return False
    return not steps.s.final_quality_check or await steps.final_quality(rnd, example)
