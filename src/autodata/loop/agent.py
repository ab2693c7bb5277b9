"""The agent orchestrator: a model runs the episode by calling tools; the harness keeps the rules.

The model sees the document's opening and, after every call, the tool's result as JSON, and picks
the next tool: ``call_challenger`` (with its own instructions for the new angle),
``call_quality_verifier``, ``evaluate_weak``, ``evaluate_strong``, ``finish`` or ``give_up``. It can
choose the order, skip steps and word the feedback itself; it cannot score anything. Every tool runs
the same :class:`~autodata.loop.episode.Steps` as the scripted orchestrator, and ``finish`` recomputes
the acceptance predicate from the round's stored marks and quality verdict: a submission that does
not pass is refused with the reasons, and the model has to go on or give up.

Tools are offered as one JSON action per turn (a schema-constrained reply) rather than through the
server's function-calling API: structured output works on every OpenAI-compatible server we support,
is repaired and re-asked like any other structured call, and replays from the call cache, so an
agent episode resumes after a crash exactly as a scripted one does.

Budgets are the harness's: at most ``max_rounds`` challenger calls and ``max_agent_steps`` tool
calls per document; three unusable replies in a row end the episode.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from statistics import fmean
from typing import Any

from autodata.documents import Document
from autodata.judging.acceptance import Preset, check_weak
from autodata.judging.framing import fence
from autodata.llm.runtime import ModelRuntime
from autodata.llm.types import CallError
from autodata.loop.episode import (
    Episode,
    EpisodeSettings,
    Round,
    Steps,
    aborts_episode,
    feedback_items,
    reason_messages,
    scores_of,
)
from autodata.prompts import render
from autodata.roles.schemas import ChallengerOutput, OrchestratorAction

MAX_BAD_REPLIES = 3


def _pct(x: float | None) -> float | None:
    return None if x is None else round(100 * x, 1)


# How each threshold of a preset reads in the orchestrator's prompt ({} is the threshold's value).
_WORDING: tuple[tuple[str, str], ...] = (
    ("weak_mean_max", "weak mean <= {pct}%"),
    ("weak_mean_below", "weak mean < {pct}%"),
    ("weak_best_max", "best weak attempt <= {pct}%"),
    ("weak_correct_max", "at most {n} weak attempts fully correct"),
    ("strong_mean_min", "strong mean >= {pct}%"),
    ("strong_mean_below", "strong mean < {pct}%"),
    ("strong_correct_min", "at least {n} strong attempts fully correct"),
    ("gap_min", "strong mean - weak mean >= {pct} points"),
)


def describe(p: Preset) -> str:
    """The acceptance test in words, for the orchestrator's prompt (the harness applies the real one)."""
    parts = ["the quality verifier passed it"] if p.require_quality else []
    for attr, words in _WORDING:
        value = getattr(p, attr)
        if value is not None:
            parts.append(words.format(pct=_pct(value), n=value))
    if p.weak_no_zero:
        parts.append("no weak attempt scores 0")
    if p.strong_no_zero:
        parts.append("no strong attempt scores 0")
    if p.judge_loop:
        parts.append("a loop judge, shown the scores, accepts it")
    return "; ".join(parts)


@dataclass(slots=True)
class _State:
    rounds: list[Round] = field(default_factory=list)
    current: Round | None = None
    example: ChallengerOutput | None = None
    asked: list[str] = field(default_factory=list)  # the orchestrator's instructions so far, in order
    done: bool = False
    accepted: bool = False
    finished: int | None = None  # the round finish accepted
    note: str | None = None


class _Tools:
    def __init__(self, steps: Steps, s: EpisodeSettings) -> None:
        self.steps, self.s, self.st = steps, s, _State()

    def _quality_passed(self, rnd: Round) -> bool:
        """The first pass passed, and the final pass, once run, did too (a failed final pass is final)."""
        q = rnd.quality or {}
        return bool(q.get("passed")) and (q.get("final") or {"passed": True})["passed"]

    async def call(self, action: OrchestratorAction) -> dict[str, Any]:
        if action.tool == "call_challenger":
            return await self.call_challenger(action.instructions.strip())
        if action.tool == "give_up":
            self.st.done, self.st.note = True, f"the orchestrator gave up: {action.thought or 'no reason given'}"
            return {"ended": True}
        rnd, example = self.st.current, self.st.example
        if rnd is None or example is None:
            return {"refused": "there is no example yet; call call_challenger first"}
        if action.tool == "call_quality_verifier":
            return await self.quality(rnd, example)
        if action.tool == "evaluate_weak":
            return await self.weak(rnd, example)
        if action.tool == "evaluate_strong":
            return await self.strong(rnd, example)
        return await self.finish(rnd, example)

    async def call_challenger(self, instructions: str) -> dict[str, Any]:
        st = self.st
        if len(st.rounds) >= self.s.max_rounds:
            return {"refused": f"all {self.s.max_rounds} rounds are spent; finish a passing example or give_up"}
        rnd = Round(number=len(st.rounds), instructions=instructions)
        st.rounds.append(rnd)
        if instructions:
            st.asked.append(instructions)
        st.current, st.example = rnd, await self.steps.propose(rnd, list(st.asked), feedback_items(st.rounds[:-1]))
        left = self.s.max_rounds - len(st.rounds)
        if st.example is None:
            return {"round": rnd.number + 1, "rounds_left": left, "error": rnd.error}
        ex = st.example
        return {
            "round": rnd.number + 1,
            "rounds_left": left,
            "example": {
                "question_type": ex.question_type,
                "context": ex.context,
                "question": ex.question,
                "reference_answer": ex.reference_answer,
                "rubric": [r.model_dump() for r in ex.rubric],
            },
        }

    async def quality(self, rnd: Round, example: ChallengerOutput) -> dict[str, Any]:
        if rnd.quality is None and rnd.error is None:
            await self.steps.quality(rnd, example)
        if rnd.quality is None:
            return {"error": rnd.error}
        return {k: rnd.quality[k] for k in ("passed", "issues", "feedback")}

    async def weak(self, rnd: Round, example: ChallengerOutput) -> dict[str, Any]:
        if not rnd.weak:
            early = await self.steps.weak(rnd, example)
            if not early.accepted:
                rnd.decision, rnd.feedback = early, reason_messages(early)
        else:
            early = check_weak(self.s.preset, scores_of(rnd.weak))
        scores = scores_of(rnd.weak)
        return {
            "weak_scores": [_pct(x) for x in scores],
            "weak_mean": _pct(early.weak_mean),
            "weak_best": _pct(early.weak_best),
            "weak_checks_pass": early.accepted,
            "reasons": reason_messages(early),
            "reason_codes": early.codes,
            "unscored_attempts": [a.error for a in rnd.weak if a.score is None],
        }

    async def strong(self, rnd: Round, example: ChallengerOutput) -> dict[str, Any]:
        if not rnd.weak:
            return {"refused": "evaluate_weak first: the acceptance test compares the two solvers"}
        if rnd.strong is None:
            await self.steps.strong(rnd, example)
        d = self.steps.decision(rnd, quality_passed=self._quality_passed(rnd))
        rnd.decision, rnd.feedback = d, reason_messages(d)
        weak, strong = scores_of(rnd.weak), scores_of(rnd.strong or [])
        wm, sm = (fmean(weak) if weak else None), (fmean(strong) if strong else None)
        out: dict[str, Any] = {
            "strong_scores": [_pct(x) for x in strong],
            "weak_mean": _pct(wm),
            "strong_mean": _pct(sm),
            "gap_points": _pct(sm - wm) if wm is not None and sm is not None else None,
            "acceptance_test_holds": d.accepted,
            "reasons": reason_messages(d),
            "reason_codes": d.codes,
        }
        if rnd.quality is None:
            out["note"] = "the quality verifier has not checked this example; finish will need its pass"
        if rnd.loop_judge is not None:
            out["loop_judge"] = rnd.loop_judge
        return out

    async def finish(self, rnd: Round, example: ChallengerOutput) -> dict[str, Any]:
        missing = {}  # step -> why: the steps are the result's machine-readable part, the words for the reader
        if rnd.quality is None:
            missing["quality"] = "the quality verifier has not checked this example"
        if not rnd.weak:
            missing["weak"] = "the weak solver has not been evaluated"
        if rnd.strong is None:
            missing["strong"] = "the strong solver has not been evaluated"
        if missing:
            return {
                "refused": "the acceptance test cannot be applied yet",
                "reasons": list(missing.values()),
                "missing": list(missing),
            }
        d = self.steps.decision(rnd, quality_passed=self._quality_passed(rnd))  # recomputed, never trusted
        rnd.decision, rnd.feedback = d, reason_messages(d)
        if not d.accepted:
            return {
                "refused": "the example does not pass the acceptance test",
                "reasons": reason_messages(d),
                "reason_codes": d.codes,
            }
        if self.s.final_quality_check and "final" not in (rnd.quality or {}):
            if not await self.steps.final_quality(rnd, example):
                return {"refused": "the final quality check failed", "reasons": rnd.feedback or [rnd.error or ""]}
        self.st.done = self.st.accepted = True
        self.st.finished = rnd.number
        return {"accepted": True}


def _messages(doc: Document, s: EpisodeSettings) -> list[dict[str, str]]:
    task = render(
        "orchestrator.j2",
        max_rounds=s.max_rounds,
        k_weak=s.k_weak,
        k_strong=s.k_strong,
        acceptance=describe(s.preset),
        instructions=s.orchestrator_instructions,
        document_id=doc.id,
        title=fence(doc.title).replace('"', "'"),
        document=fence(doc.text),  # the same text the challenger sees, cut to the budget only
    )
    return [{"role": "user", "content": task}]


async def run_agent_episode(runtime: ModelRuntime, doc: Document, s: EpisodeSettings) -> Episode:
    endpoint = s.endpoints.orchestrator
    if endpoint is None:
        raise ValueError("the agent orchestrator needs an orchestrator endpoint")
    tools = _Tools(Steps(runtime, doc, s), s)
    messages = _messages(doc, s)
    log: list[dict[str, Any]] = []
    bad = 0
    for step in range(s.max_agent_steps):
        try:
            res = await runtime.structured(endpoint, messages, OrchestratorAction, role="orchestrator", sample=step)
        except CallError as err:
            if aborts_episode(err):
                raise
            bad += 1
            log.append({"step": step, "error": str(err)})
            if bad >= MAX_BAD_REPLIES:
                tools.st.note = f"the orchestrator gave no usable action: {err}"
                break
            messages = [*messages, {"role": "user", "content": json.dumps({"error": f"not a valid action: {err}"})}]
            continue
        bad = 0
        action: OrchestratorAction = res.value
        result = await tools.call(action)
        log.append({"step": step, **action.model_dump(), "result": result})
        messages = [
            *messages,
            {"role": "assistant", "content": json.dumps(action.model_dump(), ensure_ascii=False)},
            {"role": "user", "content": json.dumps({"tool": action.tool, "result": result}, ensure_ascii=False)},
        ]
        if tools.st.done:
            break
    else:
        tools.st.note = f"the orchestrator used all {s.max_agent_steps} steps without finishing"
    st = tools.st
    return Episode(
        doc.id,
        "accepted" if st.accepted else "exhausted",
        st.rounds,
        orchestrator="agent",
        steps=log,
        note=st.note,
        finished_round=st.finished,
    )
