"""Episodes on the simulated ladder over real papers: the workflow's invariants, with numbers."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import yaml

from autodata.cli import default_config_text
from autodata.config import validate_config
from autodata.documents import fit_to_budget, load_documents
from autodata.judging.acceptance import decide, preset
from autodata.judging.rubric import score
from autodata.llm.runtime import ModelRuntime
from autodata.loop.episode import Endpoints, EpisodeSettings
from autodata.loop.orchestrate import run_episode

PAPERS = Path(__file__).resolve().parents[1] / "examples" / "corpus" / "papers"
SETTINGS = EpisodeSettings(
    Endpoints("challenger", "judge", "weak", "strong", "judge"), preset("deployed"), max_rounds=6
)


@pytest.fixture(scope="module")
def episodes():
    cfg = validate_config(yaml.safe_load(default_config_text()))

    async def go():
        rt = ModelRuntime(cfg, cache=None)
        docs = [fit_to_budget(d, 6000) for d in load_documents([PAPERS])]
        eps = await asyncio.gather(*(run_episode(rt, d, SETTINGS) for d in docs))
        return eps, rt.meter

    return asyncio.run(go())


def test_acceptance_rate_and_rounds_are_realistic(episodes):
    eps, _ = episodes
    accepted = [e for e in eps if e.status == "accepted"]
    assert len(eps) == 20
    assert 0.4 <= len(accepted) / len(eps) <= 0.95
    rounds = [len(e.rounds) for e in accepted]
    assert 1.5 <= sum(rounds) / len(rounds) <= 4.5
    assert all(len(e.rounds) == SETTINGS.max_rounds for e in eps if e.status == "exhausted")
    first = [e.rounds[0].decision.codes for e in eps if e.rounds[0].decision and not e.rounds[0].accepted]
    too_easy = sum(any(c.startswith("weak_") and c != "weak_zero_attempt" for c in codes) for codes in first)
    assert too_easy >= len(first) / 2  # first tries are mostly too easy


def test_accepted_examples_satisfy_the_predicate_recomputed_from_marks(episodes):
    eps, _ = episodes
    for e in eps:
        r = e.accepted_round
        if r is None:
            continue
        weights = [c["weight"] for c in r.example["rubric"]]
        weak = [score(weights, a.marks) for a in r.weak if a.marks is not None]
        strong = [score(weights, a.marks) for a in r.strong if a.marks is not None]
        assert weak == [a.score for a in r.weak if a.marks is not None]
        assert decide(SETTINGS.preset, quality_passed=True, weak=weak, strong=strong).accepted
        assert r.decision.weak_mean <= 0.65 + 1e-9 and 0.6 - 1e-9 <= r.decision.strong_mean < 0.95
        assert r.decision.gap >= 0.2 - 1e-9
        assert r.quality["passed"] and r.quality["final"]["passed"]


def test_weak_first_skips_the_strong_solver(episodes):
    eps, meter = episodes
    rejected_at_weak = [r for e in eps for r in e.rounds if r.decision and r.decision.stage == "weak"]
    assert rejected_at_weak and all(r.strong is None for r in rejected_at_weak)
    strong_rounds = sum(1 for e in eps for r in e.rounds if r.strong is not None)
    weak_rounds = sum(1 for e in eps for r in e.rounds if r.weak)
    by_role = meter.by_role()
    # one call per attempt: k per side, plus a new sample for each attempt error (re-sampled)
    assert by_role["strong_solver"].calls == sum(len(r.strong or []) for e in eps for r in e.rounds)
    assert by_role["weak_solver"].calls == sum(len(r.weak) for e in eps for r in e.rounds)
    assert all(len([a for a in r.weak if a.score is not None]) == 3 for e in eps for r in e.rounds if r.weak)
    assert strong_rounds < weak_rounds


def test_rejections_become_grouped_feedback(episodes):
    eps, _ = episodes
    for e in eps:
        for r in e.rounds:
            if r.decision is not None and not r.decision.accepted:
                assert r.feedback, r.to_dict()
                assert all(
                    line.startswith(
                        (
                            "too easy",
                            "failed on strong",
                            "failed quality check",
                            "a weak attempt",
                            "too easy for strong",
                            "the weak solver",
                        )
                    )
                    for line in r.feedback
                ), r.feedback


def test_rounds_serialise_for_the_trajectory(episodes):
    import json

    eps, _ = episodes
    data = json.loads(json.dumps([r.to_dict() for e in eps for r in e.rounds]))
    assert all({"round", "example", "quality", "weak", "strong", "decision", "feedback"} <= set(d) for d in data)


def test_empty_truncated_answers_are_not_judged_as_failures():
    """A solver that spends its whole budget thinking gives no answer: no attempt, not a 0 score."""
    from autodata.documents import Document
    from autodata.llm.backends import Reply
    from autodata.llm.runtime import make_backends
    from autodata.loop.episode import Steps
    from autodata.roles.schemas import ChallengerOutput

    class OutOfTokens:
        label = "thinking-model"

        async def send(self, body):
            return Reply(
                {
                    "choices": [
                        {"message": {"content": None, "reasoning_content": "hmm " * 500}, "finish_reason": "length"}
                    ],
                    "usage": {"prompt_tokens": 50, "completion_tokens": 512},
                },
                {},
            )

        async def aclose(self):
            return None

    cfg = validate_config(yaml.safe_load(default_config_text()))
    backends = {name: make_backends(name, ep, 0) for name, ep in cfg.models.items()}
    backends["weak"] = [OutOfTokens()]
    example = ChallengerOutput.model_validate(
        {
            "question_type": "q",
            "reasoning_skills": ["r"],
            "context": "c",
            "question": "Why?",
            "reference_answer": "because",
            "rubric": [{"criterion": f"mentions 'k{i}'", "weight": 2} for i in range(3)]
            + [{"criterion": "claims that 'a' is the same as 'b'", "weight": -1}],
        }
    )

    from autodata.loop.episode import NoEvidence, Round

    async def go():
        rt = ModelRuntime(cfg, backends=backends, cache=None)
        steps = Steps(rt, Document("d", "t", "t", "x", "txt"), SETTINGS)
        rnd = Round(0)
        with pytest.raises(NoEvidence) as info:  # no valid attempt even after re-sampling: no verdict at all
            await steps.weak(rnd, example)
        return info.value, rt.meter.by_role()

    err, by_role = asyncio.run(go())
    assert "0 valid attempts of the 3" in str(err) and "reasoning_only" in str(err)  # the runtime marks it
    assert by_role["weak_solver"].calls == 3 * (1 + SETTINGS.max_resamples)  # k, then two waves of new samples
    assert "judge" not in by_role  # nothing was sent to the judge


def test_adaptive_stopping_draws_a_prefix_of_the_attempts_and_keeps_every_decision():
    from dataclasses import replace

    cfg = validate_config(yaml.safe_load(default_config_text()))
    adaptive = replace(SETTINGS, adaptive_stopping=True, max_rounds=1)
    full = replace(SETTINGS, max_rounds=1)

    async def go(settings):
        rt = ModelRuntime(cfg, cache=None)
        docs = [fit_to_budget(d, 6000) for d in load_documents([PAPERS])]
        eps = await asyncio.gather(*(run_episode(rt, d, settings) for d in docs))
        return eps, rt.meter.by_role()

    a_eps, a_usage = asyncio.run(go(adaptive))
    f_eps, f_usage = asyncio.run(go(full))
    stopped = 0
    for a, f in zip(a_eps, f_eps, strict=True):  # round 0 is the same example in both runs
        ra, rf = a.rounds[0], f.rounds[0]
        if not rf.weak:
            continue
        assert [x.to_dict() for x in ra.weak] == [x.to_dict() for x in rf.weak[: len(ra.weak)]]
        assert ra.decision.accepted == rf.decision.accepted
        if len(ra.weak) < len(rf.weak) or (ra.strong is not None and len(ra.strong) < len(rf.strong)):
            stopped += 1
            assert not ra.decision.accepted  # only a settled rejection stops early
    assert stopped >= 3
    saved = f_usage["weak_solver"].calls + f_usage["strong_solver"].calls
    saved -= a_usage["weak_solver"].calls + a_usage["strong_solver"].calls
    assert saved > 0 and f_usage["judge"].calls - a_usage["judge"].calls >= saved  # each attempt saves its marking
