"""The agent orchestrator: a model picks the tools, the harness keeps every rule.

Scripted orchestrators (a fake backend replaying a fixed list of actions) probe the rules one by
one: finish is refused unless the acceptance test, recomputed from the stored marks, holds; tools
used out of order are refused; budgets end the episode; unusable replies are survived. An end-to-end
run with the simulated agent checks the accepted examples against the predicate.
"""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import replace
from pathlib import Path

import pytest

from autodata.config import load_config
from autodata.documents import fit_to_budget, load_documents
from autodata.judging.acceptance import decide
from autodata.judging.rubric import score
from autodata.llm.backends import Reply
from autodata.llm.runtime import ModelRuntime, make_backends
from autodata.loop.agent import describe
from autodata.loop.orchestrate import run_episode
from autodata.loop.run import run, settings_from

ROOT = Path(__file__).resolve().parents[1]
PAPER = ROOT / "examples" / "corpus" / "papers" / "arxiv-2212.11784.md"


class ScriptedAgent:
    """Replies with the i-th action of a script, i = the number of actions already in the transcript."""

    label = "scripted-agent"

    def __init__(self, script: list[dict] | None, garbage: bool = False) -> None:
        self.script, self.garbage, self.seen = script or [], garbage, []

    async def send(self, body):
        self.seen.append(body["messages"])
        i = sum(1 for m in body["messages"] if m["role"] == "assistant")
        if self.garbage:
            content = "I think we should probably accept this one."
        else:
            content = json.dumps(self.script[min(i, len(self.script) - 1)])
        return Reply(
            {
                "choices": [{"message": {"content": content}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 100, "completion_tokens": 20},
            },
            {},
        )

    async def aclose(self):
        return None


def act(tool: str, thought: str = "", instructions: str = "") -> dict:
    return {"tool": tool, "thought": thought, "instructions": instructions}


def episode_with(agent: ScriptedAgent, **settings):
    cfg = load_config(ROOT / "examples" / "agent.yaml", ["models.orch={provider: simulated, model: sim-challenger}"])
    cfg.roles["orchestrator"] = "orch"
    backends = {name: make_backends(name, ep, 0) for name, ep in cfg.models.items()}
    backends["orch"] = [agent]
    s = replace(settings_from(cfg), **settings)
    doc = fit_to_budget(next(iter(load_documents([PAPER]))), 6000)

    async def go():
        rt = ModelRuntime(cfg, backends=backends, cache=None)
        try:
            return await run_episode(rt, doc, s), s
        finally:
            await rt.aclose()

    return asyncio.run(go())


def results(ep) -> list[dict]:
    return [st["result"] for st in ep.steps]


def test_tools_out_of_order_are_refused_and_finish_is_judged_by_the_harness():
    script = [
        act("finish", "Nothing to do, accept."),
        act("evaluate_weak"),
        act("call_challenger", instructions="Ask about the tensor of effects."),
        act("finish", "Looks great, the test surely holds."),
        act("evaluate_strong"),
        act("call_quality_verifier"),
        act("evaluate_weak"),
        act("evaluate_strong"),
        act("finish", "The acceptance test holds. Accept it."),
        act("give_up"),
    ]
    ep, s = episode_with(ScriptedAgent(script))
    r = results(ep)
    assert r[0] == {"refused": "there is no example yet; call call_challenger first"}
    assert r[1] == r[0]
    assert r[2]["round"] == 1 and r[2]["rounds_left"] == s.max_rounds - 1 and "question" in r[2]["example"]
    assert r[3]["refused"] == "the acceptance test cannot be applied yet"
    assert set(r[3]["reasons"]) == {
        "the quality verifier has not checked this example",
        "the weak solver has not been evaluated",
        "the strong solver has not been evaluated",
    }
    assert r[4] == {"refused": "evaluate_weak first: the acceptance test compares the two solvers"}
    assert set(r[5]) == {"passed", "issues", "feedback"}
    rnd = ep.rounds[0]
    assert rnd.instructions == "Ask about the tensor of effects."
    # what the harness told the agent equals what it computes from the stored marks
    weights = [c["weight"] for c in rnd.example["rubric"]]
    weak = [score(weights, a.marks) for a in rnd.weak if a.marks is not None]
    strong = [score(weights, a.marks) for a in rnd.strong if a.marks is not None]
    assert r[6]["weak_scores"] == [round(100 * x, 1) for x in weak]
    truth = decide(s.preset, quality_passed=rnd.quality["passed"], weak=weak, strong=strong)
    assert r[7]["acceptance_test_holds"] == truth.accepted
    # the agent's claim in its thought counts for nothing: finish follows the recomputed predicate
    if truth.accepted and rnd.quality.get("final", {}).get("passed", True):
        assert r[8] == {"accepted": True} and ep.status == "accepted" and len(ep.steps) == 9
    else:
        assert "refused" in r[8] and ep.status == "exhausted" and ep.note.startswith("the orchestrator gave up")


def test_an_agent_that_insists_on_finish_gets_no_example():
    script = [act("call_challenger"), act("call_quality_verifier"), act("evaluate_weak")]
    script += [act("finish", "Accept. The weak solver obviously failed; skip the strong solver.")]
    ep, _ = episode_with(ScriptedAgent(script), max_agent_steps=8)
    assert ep.status == "exhausted" and ep.accepted_round is None
    assert ep.note == "the orchestrator used all 8 steps without finishing"
    finishes = [st for st in ep.steps if st["tool"] == "finish"]
    assert len(finishes) == 5 and all(st["result"]["refused"] for st in finishes)
    assert all("the strong solver has not been evaluated" in st["result"]["reasons"] for st in finishes)


def test_round_budget_is_the_harnesses():
    ep, s = episode_with(ScriptedAgent([act("call_challenger", instructions="Again.")]), max_rounds=3)
    assert len(ep.rounds) == 3 and ep.status == "exhausted"
    refused = [st for st in ep.steps if "refused" in st["result"]]
    assert refused and refused[0]["result"]["refused"].startswith("all 3 rounds are spent")
    assert len(ep.steps) == s.max_agent_steps  # it never gave up, so the step budget ended it
    # the challenger saw the orchestrator's instructions as feedback
    assert ep.rounds[2].instructions == "Again."


def test_unusable_replies_end_the_episode_without_crashing():
    agent = ScriptedAgent(None, garbage=True)
    ep, _ = episode_with(agent)
    assert ep.status == "exhausted" and ep.rounds == []
    assert ep.note.startswith("the orchestrator gave no usable action")
    assert len(ep.steps) == 3 and all("error" in st for st in ep.steps)
    # each bad reply was re-asked (repairs) before it counted, and then reported back to the agent
    assert any(
        json.loads(m["content"]).get("error")
        for m in agent.seen[-1]
        if m["role"] == "user" and m["content"].startswith("{")
    )


def test_the_orchestrator_prompt_states_the_real_acceptance_test():
    ep, s = episode_with(ScriptedAgent([act("give_up", "The document is a table of contents.")]))
    assert ep.status == "exhausted" and ep.note == "the orchestrator gave up: The document is a table of contents."
    assert describe(s.preset).startswith("the quality verifier passed it; weak mean <= 65.0%")


# ---------------------------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def agent_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("agent") / "run"
    cfg = load_config(ROOT / "examples" / "agent.yaml")
    cwd = Path.cwd()
    os.chdir(ROOT)
    try:
        summary = asyncio.run(run(cfg, out, limit=12, use_cache=False))
    finally:
        os.chdir(cwd)
    return out, summary, settings_from(cfg)


def test_agent_run_accepts_only_examples_that_pass_the_predicate(agent_run):
    out, summary, s = agent_run
    examples = [json.loads(x) for x in (out / "examples.jsonl").read_text().splitlines()]
    episodes = [json.loads(x) for x in (out / "episodes.jsonl").read_text().splitlines()]
    assert len(episodes) == 12 and 0.4 <= len(examples) / 12 <= 1.0
    assert summary["usage_by_role"]["orchestrator"]["calls"] >= sum(len(e["steps"]) for e in episodes)
    for ex in examples:
        weights = [c["weight"] for c in ex["rubric"]]
        weak = [score(weights, a["marks"]) for a in ex["weak"]["attempts"]]
        strong = [score(weights, a["marks"]) for a in ex["strong"]["attempts"]]
        assert decide(s.preset, quality_passed=ex["quality"]["passed"], weak=weak, strong=strong).accepted
    for e in episodes:
        assert e["orchestrator"] == "agent" and 1 <= len(e["steps"]) <= s.max_agent_steps
        accepted_steps = [st for st in e["steps"] if st.get("result") == {"accepted": True}]
        assert len(accepted_steps) == (e["status"] == "accepted")
        if e["status"] == "accepted":
            rnd = next(r for r in e["rounds"] if r["decision"] and r["decision"]["accepted"])
            assert rnd["quality"]["passed"] and rnd["quality"]["final"]["passed"]
            assert e["steps"][-1]["tool"] == "finish"


def test_the_document_reaches_the_orchestrator_only_as_fenced_data():
    agent = ScriptedAgent([act("give_up")])
    episode_with(agent)
    task = agent.seen[0][0]["content"]
    block = task.split("<document", 1)[1].split("</document>", 1)[0]
    assert "Sum and Tensor of Quantitative Effects" in block
    assert task.index("</document>") > task.index("Tools:")  # the rules come before the data, outside it
    # the orchestrator reads the same document as the challenger (cut to the budget), not a 3000-char excerpt
    doc = fit_to_budget(next(iter(load_documents([PAPER]))), 6000)
    assert len(doc.text) > 3000
    last = doc.text.strip().splitlines()[-1].strip()
    assert last and last in block


def test_a_passing_round_the_agent_never_submitted_yields_no_example():
    # quality, weak and strong run (the test may hold), then the agent gives up instead of finish
    script = [act("call_challenger"), act("call_quality_verifier"), act("evaluate_weak"), act("evaluate_strong")]
    ep, _ = episode_with(ScriptedAgent([*script, act("give_up", "I will stop here.")]))
    assert ep.status == "exhausted" and ep.accepted_round is None


def test_a_failed_final_quality_pass_cannot_be_undone_by_evaluating_again():
    from autodata.loop.agent import _Tools
    from autodata.loop.episode import Attempt, Round

    class NoSteps:
        def decision(self, rnd, *, quality_passed):
            from autodata.judging.acceptance import decide, preset

            return decide(preset("deployed"), quality_passed=quality_passed, weak=[0.4] * 3, strong=[0.8] * 3)

    cfg_settings = episode_with(ScriptedAgent([act("give_up")]))[1]
    tools = _Tools(NoSteps(), cfg_settings)  # type: ignore[arg-type]
    rnd = Round(0, weak=[Attempt("a", [1], 0.4)] * 3, strong=[Attempt("b", [1], 0.8)] * 3)
    rnd.quality = {"passed": True, "issues": [], "feedback": "", "final": {"passed": False}}
    result = asyncio.run(tools.strong(rnd, None))  # type: ignore[arg-type]
    assert result["acceptance_test_holds"] is False and rnd.decision.codes == ["quality_failed"]
    assert "refused" in asyncio.run(tools.finish(rnd, None))  # type: ignore[arg-type]
