"""Attempt errors and server errors are never verdicts (issue: real servers, real outputs).

A solver reply without a usable answer (``Completion.problem``, or an empty answer) and a judge that
gives no valid marks are *attempt errors*: recorded with their reason, never judged, never scored,
and replaced by new samples. A round that cannot gather the valid attempts the acceptance test needs,
and an episode in which no round reached a verdict, fail the document for this session (retried on
resume). A context-length 400 re-fits the document to a smaller budget before giving up, and the
challenger is never told about a server's error.

The replies with problems are built here the way the runtime marks them (``Completion.problem``):
which wire replies get which code is the runtime's concern and tested there.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import sqlite3
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from autodata.cli import default_config_text
from autodata.config import validate_config
from autodata.documents import Document, fit_to_budget, load_documents
from autodata.judging.acceptance import check_weak, preset
from autodata.llm.runtime import ModelRuntime
from autodata.llm.types import CallError, Completion
from autodata.llm.usage import current_document
from autodata.loop.episode import Endpoints, EpisodeSettings, NoEvidence, Round, Steps, scores_of
from autodata.loop.orchestrate import run_episode
from autodata.loop.run import run as run_loop
from autodata.roles.schemas import ChallengerOutput
from conftest import ladder_models, ladder_roles

ROOT = Path(__file__).resolve().parents[1]
PAPERS = ROOT / "examples" / "corpus" / "papers"
SETTINGS = EpisodeSettings(Endpoints("challenger", "judge", "weak", "strong", "judge"), preset("deployed"))
EXAMPLE = ChallengerOutput.model_validate(
    {
        "question_type": "q",
        "reasoning_skills": ["r"],
        "context": "The harbour tide tables list two high waters a day; mooring is allowed only near them.",
        "question": "When may boats moor?",
        "reference_answer": "near high water",
        "rubric": [{"criterion": f"mentions 'k{i}'", "weight": 2} for i in range(3)]
        + [{"criterion": "claims that 'a' is the same as 'b'", "weight": -1}],
    }
)

# One reply of each kind seen in the wild, as the runtime marks it (code: detail).
PROBLEMS = {
    "content_filter": "content_filter: finish_reason content_filter with no content (Azure)",
    "provider_error": "provider_error: finish_reason error with an error inside the choice (OpenRouter)",
    "no_message": "no_message: a choice without a message (Gemini)",
    "reasoning_only": "reasoning_only: content null, everything in reasoning_content (budget spent thinking)",
    "unclosed_think": "unclosed_think: <think> never closed, cut by finish_reason length",
}


def sim_config(**loop: Any):
    data = yaml.safe_load(default_config_text())
    data.setdefault("loop", {}).update(loop)
    data["documents"] = {"paths": [str(PAPERS)], "max_tokens": 6000}
    return validate_config(data)


class Faulty(ModelRuntime):
    """The simulated ladder, with ``rule(role, sample, completion)`` able to spoil or refuse a reply."""

    def __init__(self, cfg, rule) -> None:
        super().__init__(cfg, cache=None)
        self.rule = rule
        self.asked: list[tuple[str, int]] = []

    async def complete(self, model, messages, *, role="default", sample=0, **kw) -> Completion:  # type: ignore[override]
        self.asked.append((role, sample))
        c = await super().complete(model, messages, role=role, sample=sample, **kw)
        return self.rule(role, sample, c, messages) or c


def weak_round(rule, settings: EpisodeSettings = SETTINGS) -> tuple[Round, Faulty]:
    async def go():
        rt = Faulty(sim_config(), rule)
        rnd = Round(0)
        await Steps(rt, Document("d", "t", "t", "x", "txt"), settings).weak(rnd, EXAMPLE)
        return rnd, rt

    return asyncio.run(go())


# ------------------------------------------------------------------------------------------ attempts


@pytest.mark.parametrize("code", [*PROBLEMS, "whitespace"])
def test_a_reply_without_an_answer_is_an_attempt_error_never_judged_and_replaced(code):
    def rule(role, sample, c, _):
        if role == "weak_solver" and sample == 1:
            if code == "whitespace":
                return replace(c, text="  \n\t ", finish_reason="stop")
            return replace(c, text="", problem=PROBLEMS[code])
        return None

    rnd, rt = weak_round(rule)
    assert [a.score is None for a in rnd.weak] == [False, True, False, False]
    bad = rnd.weak[1]
    assert bad.answer is None and bad.marks is None
    assert bad.error.startswith("solver: " + ("empty" if code == "whitespace" else code))
    assert ("judge", 1) not in rt.asked  # never sent to the judge
    assert ("weak_solver", 3) in rt.asked  # replaced by a new sample index
    assert len(scores_of(rnd.weak)) == 3  # the acceptance test sees three valid attempts
    assert check_weak(SETTINGS.preset, scores_of(rnd.weak)).accepted in (True, False)
    stored = json.loads(json.dumps(rnd.to_dict()))
    assert stored["weak"][1]["error"] == bad.error and stored["weak"][1]["score"] is None


def test_min_valid_attempts_sets_how_many_valid_attempts_a_side_needs():
    def rule(role, sample, c, _):
        return (
            replace(c, text="", problem=PROBLEMS["reasoning_only"]) if role == "weak_solver" and sample == 0 else None
        )

    rnd, rt = weak_round(rule, replace(SETTINGS, min_valid_weak=2))
    assert len(rnd.weak) == 3 and len(scores_of(rnd.weak)) == 2  # two are enough: nothing re-sampled
    assert ("weak_solver", 3) not in rt.asked


def test_a_judge_that_gives_no_valid_marks_is_not_a_zero_mark():
    def rule(role, sample, c, _):
        return replace(c, text="I cannot mark this.") if role == "judge" and sample == 2 else None

    rnd, rt = weak_round(rule)
    bad = rnd.weak[2]
    assert bad.score is None and bad.marks is None and bad.answer  # the answer is kept, unscored
    assert bad.error.startswith("judge: invalid_output")
    assert len(scores_of(rnd.weak)) == 3 and ("judge", 3) in rt.asked


def test_without_enough_valid_attempts_the_round_has_no_verdict():
    def rule(role, sample, c, _):
        return (
            replace(c, text="", problem=PROBLEMS["content_filter"]) if role == "weak_solver" and sample != 0 else None
        )

    async def go():
        rt = Faulty(sim_config(), rule)
        rnd = Round(0)
        with pytest.raises(NoEvidence) as info:
            await Steps(rt, Document("d", "t", "t", "x", "txt"), SETTINGS).weak(rnd, EXAMPLE)
        return rnd, rt, info.value

    rnd, rt, err = asyncio.run(go())
    assert err.kind == "no_evidence" and "1 valid attempts of the 3" in str(err) and "content_filter" in str(err)
    assert rnd.decision is None and rnd.feedback == []  # no verdict, no feedback for the challenger
    assert sum(1 for role, _ in rt.asked if role == "weak_solver") == 3 + 2 + 2  # k, then two bounded waves


def test_adaptive_stopping_counts_only_valid_attempts():
    def rule(role, sample, c, _):
        return replace(c, text="", problem=PROBLEMS["no_message"]) if role == "weak_solver" and sample == 0 else None

    rnd, _ = weak_round(rule, replace(SETTINGS, adaptive_stopping=True))
    assert rnd.weak[0].error and all(a.error is None for a in rnd.weak[1:])
    valid = scores_of(rnd.weak)
    full = len(valid) == 3
    assert full or not check_weak(SETTINGS.preset, valid).accepted  # stopped early only on a settled rejection


# ------------------------------------------------------------------------------------------ verifier, loop judge


def test_an_invalid_verifier_answer_is_asked_again_with_a_new_sample():
    def rule(role, sample, c, _):
        return replace(c, text="{oops") if role == "quality_verifier" and sample == 0 else None

    async def go():
        rt = Faulty(sim_config(), rule)
        rnd = Round(0)
        await Steps(rt, Document("d", "t", "t", "x", "txt"), SETTINGS).quality(rnd, EXAMPLE)
        return rnd, rt

    rnd, rt = asyncio.run(go())
    assert rnd.quality is not None and ("quality_verifier", 100) in rt.asked


def test_a_verifier_that_never_answers_gives_no_verdict_and_no_feedback():
    def rule(role, sample, c, _):
        return replace(c, text="{oops") if role == "quality_verifier" else None

    async def go():
        rt = Faulty(sim_config(), rule)
        rnd = Round(0)
        with pytest.raises(NoEvidence):
            await Steps(rt, Document("d", "t", "t", "x", "txt"), SETTINGS).quality(rnd, EXAMPLE)
        return rnd

    rnd = asyncio.run(go())
    assert rnd.decision is None and rnd.feedback == [] and rnd.error.startswith("quality_verifier:")


def test_a_loop_judge_without_a_verdict_is_not_an_improve():
    def rule(role, sample, c, _):
        return replace(c, text="no verdict today") if role == "loop_judge" else None

    settings = replace(
        SETTINGS,
        endpoints=Endpoints("challenger", "judge", "weak", "strong", "judge", loop_judge="judge"),
        preset=preset("judge"),
    )

    async def go():
        rt = Faulty(sim_config(), rule)
        rnd = Round(0)
        steps = Steps(rt, Document("d", "t", "t", "x", "txt"), settings)
        await steps.weak(rnd, EXAMPLE)
        with pytest.raises(NoEvidence) as info:
            await steps.strong(rnd, EXAMPLE)
        return rnd, info.value, rt

    rnd, err, rt = asyncio.run(go())
    assert "loop judge gave no usable verdict" in str(err)
    assert rnd.decision is None and rnd.feedback == []
    assert {s for role, s in rt.asked if role == "loop_judge"} == {0, 100, 200}


def test_an_episode_whose_every_round_failed_is_not_exhausted():
    def rule(role, sample, c, _):
        return replace(c, text="not an example") if role == "challenger" else None

    async def go():
        rt = Faulty(sim_config(), rule)
        doc = fit_to_budget(next(iter(load_documents([PAPERS]))), 6000)
        with pytest.raises(NoEvidence) as info:
            await run_episode(rt, doc, replace(SETTINGS, max_rounds=2))
        return info.value

    assert "no round reached a verdict in 2 rounds" in str(asyncio.run(go()))


# ------------------------------------------------------------------------------------------ the run


def _run(cfg, out: Path, rt: ModelRuntime, limit: int = 3) -> dict:
    async def go():
        try:
            return await run_loop(cfg, out, limit=limit, runtime=rt, use_cache=False)
        finally:
            await rt.aclose()

    return asyncio.run(go())


def test_a_document_without_evidence_fails_for_this_session_and_is_retried_on_resume(tmp_path):
    cfg = sim_config()
    first = next(iter(load_documents([PAPERS]))).id

    def rule(role, sample, c, _):
        if role == "weak_solver" and current_document.get() == first:
            return replace(c, text="", problem=PROBLEMS["reasoning_only"])
        return None

    out = tmp_path / "run"
    summary = _run(cfg, out, Faulty(cfg, rule))
    assert summary["documents"]["failed_this_session"] == 1
    assert summary["documents"]["accepted"] + summary["documents"]["exhausted"] == 2
    (failure,) = summary["failures"]
    assert failure["document_id"] == first and failure["kind"] == "no_evidence"
    assert "reasoning_only" in failure["error"]
    db = sqlite3.connect(str(out / "run.db"))
    assert first not in {r[0] for r in db.execute("SELECT id FROM documents")}  # not stored as finished
    db.close()
    for ep in (json.loads(x) for x in (out / "episodes.jsonl").read_text().splitlines()):
        for r in ep["rounds"]:  # the stored rounds hold no attempt error and no feedback about one
            assert not any("reasoning_only" in line for line in r["feedback"])
    # the server is fixed: the resumed run finishes the document
    summary = _run(cfg, out, Faulty(cfg, lambda *a: None))
    assert summary["documents"]["failed_this_session"] == 0
    assert summary["documents"]["accepted"] + summary["documents"]["exhausted"] == 3


# ------------------------------------------------------------------------------------------ context length


def _too_long_over(limit_chars: int):
    """A server whose window holds ``limit_chars`` characters of prompt (vLLM's wording)."""

    def rule(role, sample, c, messages):
        size = sum(len(m["content"]) for m in messages)
        if size > limit_chars:
            raise CallError(
                f"This model's maximum context length is 4096 tokens. However, you requested {size // 4} tokens",
                status=400,
                kind="context_too_long",
            )
        return None

    return rule


def test_a_context_length_error_refits_the_document_and_never_reaches_the_challenger(tmp_path):
    cfg = sim_config()
    out = tmp_path / "run"
    summary = _run(cfg, out, Faulty(cfg, _too_long_over(14_000)), limit=2)
    assert summary["documents"]["failed_this_session"] == 0
    episodes = [json.loads(x) for x in (out / "episodes.jsonl").read_text().splitlines()]
    refitted = [ep for ep in episodes if ep.get("refits")]
    assert refitted, "the documents of this test are longer than the emulated window"
    for ep in refitted:
        budgets = [r["max_tokens"] for r in ep["refits"]]
        assert budgets[0] == 6000 and all(b2 == int(b1 * 0.7) for b1, b2 in itertools.pairwise(budgets))
        assert "maximum context length" in ep["refits"][0]["error"]
    for ep in episodes:
        for r in ep["rounds"]:
            assert not any("shorter" in line for line in r["feedback"]) and not r["error"]


def test_a_context_too_small_for_any_refit_fails_the_document_for_this_session(tmp_path):
    cfg = sim_config()
    out = tmp_path / "run"
    summary = _run(cfg, out, Faulty(cfg, _too_long_over(500)), limit=2)
    assert summary["documents"]["failed_this_session"] == 2
    assert summary["documents"]["exhausted"] == summary["documents"]["accepted"] == 0
    assert all(f["kind"] == "context_too_long" for f in summary["failures"])
    assert "after re-fitting the document to 2058 tokens" in summary["failures"][0]["error"]  # 6000 * 0.7^3
    assert (out / "episodes.jsonl").read_text() == ""


# ------------------------------------------------------------------------------------------ over HTTP

# The 400 bodies two servers send for a prompt beyond the window, as users reported them:
# vLLM: https://github.com/vllm-project/vllm/issues/20409 ({"object": "error", "message": "This model's
#   maximum context length is 16384 tokens. However, you requested ...", "type": "BadRequestError", "code": 400})
# SGLang: https://github.com/QwenLM/Qwen3/issues/1321 ({"object": "error", "message": "The input (61709
#   tokens) is longer than the model's context length (40960 tokens).", "type": "BadRequestError", "code": 400})
CONTEXT_400 = {
    "vllm": "This model's maximum context length is {window} tokens. However, you requested {asked} tokens "
    "({asked} in the messages, 0 in the completion). Please reduce the length of the messages or completion.",
    "sglang": "The input ({asked} tokens) is longer than the model's context length ({window} tokens).",
}


@pytest.fixture
def no_proxies(monkeypatch):
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


def http_config(url: str):
    data = {
        "seed": 0,
        "documents": {"paths": [str(PAPERS)], "max_tokens": 6000},
        "models": ladder_models(
            lambda model, **keys: {
                "provider": "openai",
                "model": model,
                "base_url": url,
                "backoff_base_s": 0.01,
                **keys,
            }
        ),
        "roles": ladder_roles(),
    }
    return validate_config(data)


@pytest.mark.parametrize("server", list(CONTEXT_400))
async def test_over_http_a_context_length_400_refits_and_otherwise_fails_the_document(tmp_path, server, no_proxies):
    from faultserver import FaultServer, status

    def window(chars: int):
        def plan(arrival):
            asked = len(arrival.prompt) // 4
            if asked > chars // 4:
                return status(400, CONTEXT_400[server].format(window=chars // 4, asked=asked))
            return None

        return plan

    async with FaultServer(plan=window(14_000)) as srv:
        out = tmp_path / "fits"
        summary = await run_loop(http_config(srv.url), out, limit=2, use_cache=False)
    assert summary["documents"]["failed_this_session"] == 0
    assert summary["documents"]["accepted"] + summary["documents"]["exhausted"] == 2
    episodes = [json.loads(x) for x in (out / "episodes.jsonl").read_text().splitlines()]
    assert any(ep.get("refits") for ep in episodes)
    assert all(not r["error"] for ep in episodes for r in ep["rounds"])

    async with FaultServer(plan=window(400)) as srv:
        out = tmp_path / "never"
        summary = await run_loop(http_config(srv.url), out, limit=2, use_cache=False)
    assert summary["documents"]["failed_this_session"] == 2 and summary["documents"]["exhausted"] == 0
    assert {f["kind"] for f in summary["failures"]} == {"context_too_long"}
    assert "context length" in summary["failures"][0]["error"]
    assert (out / "episodes.jsonl").read_text() == ""
