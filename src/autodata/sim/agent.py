"""Simulated agent orchestrator and loop judge.

The orchestrator's contract is its transcript: every tool result comes back as a user message that
is one JSON object ``{"tool": …, "result": {…}}``, and it reads the results' fields (``passed``,
``weak_checks_pass``, ``acceptance_test_holds``, ``reason_codes``, ``missing``, ``rounds_left``), never
their wording. It mostly follows the paper's workflow, with the lapses a real agent has, each of
which the harness must handle: now and then it skips the quality check before evaluating (and must
go back to it), or submits with ``finish`` an example whose acceptance test did not hold (and is
refused). Its instructions to the challenger quote the reasons it was given, as a real agent's do;
the simulated challenger itself moves only with the harness's structured ``<feedback>`` block.

The loop judge (legal profile) reads the harness's means from the ``<scores>`` block and accepts an
example whose weak mean is low and strong mean high, with an occasional objection of its own.
"""

from __future__ import annotations

from typing import Any

from autodata.judging.acceptance import REASONS
from autodata.sim.base import SimOutput, SimRequest, structured

SKIP_QUALITY = 0.10  # how often the agent evaluates before checking quality
PREMATURE_FINISH = 0.15  # how often it submits an example whose test failed


def _groups(res: dict[str, Any]) -> set[str]:
    return {REASONS.get(code, "") for code in res.get("reason_codes") or []}


def _act(tool: str, thought: str, instructions: str = "") -> dict[str, str]:
    return {"thought": thought, "tool": tool, "instructions": instructions}


def _new_angle(reasons: list[str]) -> str:
    why = "; ".join(reasons) or "it did not work"
    return f"The last example was rejected ({why}). Take a new angle on the document."


def _decide(req: SimRequest) -> dict[str, str]:
    results = list(req.inputs["results"])
    rng = req.rng
    if not results:
        return _act("call_challenger", "Start with a first example.")
    last = results[-1]
    tool, res = last.get("tool"), last.get("result") or {}
    if "error" in last and "tool" not in last:  # my previous reply was unusable: repeat the plan
        results = results[:-1]
        if not results:
            return _act("call_challenger", "Start with a first example.")
        last = results[-1]
        tool, res = last.get("tool"), last.get("result") or {}
    rounds_left = next(
        (
            r["result"]["rounds_left"]
            for r in reversed(results)
            if r.get("tool") == "call_challenger" and "rounds_left" in (r.get("result") or {})
        ),
        1,
    )
    if tool == "call_challenger":
        if "refused" in res:
            return _act("give_up", "No rounds are left.")
        if "error" in res:
            return _act("call_challenger", "The challenger's output was unusable.", "Follow the output format exactly.")
        if rng.random() < SKIP_QUALITY:
            return _act("evaluate_weak", "The example looks clean; see how the weak model does first.")
        return _act("call_quality_verifier", "Check the example before spending solver calls.")
    if tool == "call_quality_verifier":
        if res.get("passed"):
            return _act("evaluate_weak", "Quality passed; try the weak model.")
        why = f"failed quality check: {', '.join(res.get('issues') or [])}: {res.get('feedback', '')}"
        return _next_example(rounds_left, [why])
    if tool == "evaluate_weak":
        if res.get("weak_checks_pass"):
            return _act("evaluate_strong", "The weak model failed enough; try the strong model.")
        return _next_example(rounds_left, res.get("reasons") or [])
    if tool == "evaluate_strong":
        if res.get("acceptance_test_holds"):
            return _act("finish", "The acceptance test holds.")
        if res.get("note") and not _groups(res) & {"failed_on_strong", "too_easy"}:
            return _act("call_quality_verifier", "The scores look right; the quality check is still missing.")
        if rng.random() < PREMATURE_FINISH:
            return _act("finish", "Close enough; submit it.")
        return _next_example(rounds_left, res.get("reasons") or [])
    if tool == "finish":
        reasons = res.get("reasons") or []
        if "quality" in (res.get("missing") or []):
            return _act("call_quality_verifier", "The submission needs the quality check.")
        return _next_example(rounds_left, [r for r in reasons if r])
    return _act("give_up", "Unexpected state.")


def _next_example(rounds_left: int, reasons: list[str]) -> dict[str, str]:
    if rounds_left <= 0:
        return _act("give_up", "The round budget is spent and no example passed.")
    return _act("call_challenger", "The example was rejected; ask for another angle.", _new_angle(reasons))


def orchestrator(req: SimRequest) -> SimOutput:
    return structured(req, _decide(req))


def _mean(value: Any, default: float) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else default


def loop_judge(req: SimRequest) -> SimOutput:
    scores = req.inputs["scores"] if isinstance(req.inputs["scores"], dict) else {}
    weak, strong = _mean(scores.get("weak_mean"), 1.0), _mean(scores.get("strong_mean"), 0.0)
    reasons = []
    if weak > 0.6:
        reasons.append(f"too easy: the weaker model already reaches {weak:.0%}; make it need the holding's limits")
    if strong < 0.6:
        reasons.append(f"failed on strong: the stronger model reaches only {strong:.0%}; give the facts it needs")
    elif strong - weak < 0.2:
        reasons.append("the two models are too close; sharpen what distinguishes a sound analysis")
    if not reasons and req.rng.random() < 0.08:
        reasons.append("the reference answer states the rule more broadly than the opinion does")
    value = {"verdict": "improve" if reasons else "accept", "reasons": reasons}
    return structured(req, value)
