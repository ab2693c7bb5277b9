"""Baselines on the simulated ladder: same evaluator, same outputs, and the paper's picture in numbers."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from statistics import fmean

import pytest
import yaml

from autodata.baselines.consistency import answer_consistency
from autodata.baselines.generators import METHODS, load_seeds, own_context, pick_seeds, proposer
from autodata.baselines.run import run_baseline, tally
from autodata.config import validate_config
from autodata.documents import Document
from autodata.errors import UserError
from autodata.judging.acceptance import decide, preset
from autodata.judging.rubric import score
from autodata.loop.run import run
from autodata.roles.schemas import ChallengerOutput

ROOT = Path(__file__).resolve().parents[1]
DOCS = 12


def config(tmp: Path, **loop: object):
    data = yaml.safe_load((ROOT / "examples" / "quickstart.yaml").read_text())
    data["documents"]["paths"] = [str(ROOT / "examples" / "corpus" / "papers")]
    data["cache"] = {"path": str(tmp / "cache.sqlite")}
    data["loop"].update(loop)
    return validate_config(data)


def lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("baselines")
    cfg = config(tmp)

    async def go():
        out = {}
        for m in METHODS:
            out[m] = await run_baseline(cfg, tmp / m, m, limit=DOCS)
        out["agentic"] = await run(cfg, tmp / "agentic", limit=DOCS)
        return out

    return tmp, asyncio.run(go())


def test_outputs_follow_the_run_layout_with_every_solved_example_kept(runs):
    tmp, summaries = runs
    for m in METHODS:
        d = tmp / m
        assert {p.name for p in d.iterdir()} >= {"examples.jsonl", "episodes.jsonl", "summary.json", "run.db"}
        examples, episodes, summary = lines(d / "examples.jsonl"), lines(d / "episodes.jsonl"), summaries[m]
        assert (
            summary["method"] == m and json.loads((d / "summary.json").read_text())["baseline"] == summary["baseline"]
        )
        assert len(episodes) == DOCS and all(len(e["rounds"]) == 1 for e in episodes)  # one round each
        b = summary["baseline"]
        assert b == tally(d)
        assert b["evaluated"] == len(examples) and b["evaluated"] + b["quality_failed"] + b["generation_failed"] == DOCS
        assert b["evaluated"] >= DOCS * 0.6
        assert (
            b["meeting_acceptance"] == sum(e["meets_acceptance"] for e in examples) == summary["documents"]["accepted"]
        )
        for ex in examples:
            assert ex["method"] == m and ex["rounds"] == 1
            assert bool(ex.get("reasoning")) == (m == "cot-self-instruct")  # CoT reasons before it writes
            # strong always run (an attempt the judge could not mark is left out of the record)
            assert 2 <= len(ex["weak"]["attempts"]) <= 3 and 2 <= len(ex["strong"]["attempts"]) <= 3
            assert ex["strong"]["mean"] is not None
        rounds = [e["rounds"][0] for e in episodes]
        assert all(r["strong"] is not None for r in rounds if r["quality"] and r["quality"]["passed"])


def test_scores_and_acceptance_are_the_loops_recomputed_from_marks(runs):
    tmp, _ = runs
    p = preset("deployed")
    for m in METHODS:
        for ex in lines(tmp / m / "examples.jsonl"):
            weights = [c["weight"] for c in ex["rubric"]]
            weak = [score(weights, a["marks"]) for a in ex["weak"]["attempts"]]
            strong = [score(weights, a["marks"]) for a in ex["strong"]["attempts"]]
            assert weak == [a["score"] for a in ex["weak"]["attempts"]]
            assert ex["gap"] == pytest.approx(fmean(strong) - fmean(weak))
            verdict = decide(p, quality_passed=True, weak=weak, strong=strong)
            # the loop's final quality pass can still turn an accepted example down
            assert ex["meets_acceptance"] == (verdict.accepted and ex["acceptance"]["accepted"])
            if not verdict.accepted:
                assert ex["acceptance"]["reasons"] == [r.to_dict() for r in verdict.reasons]


def test_one_shot_questions_are_mostly_too_easy_unlike_the_loops(runs):
    """The paper's Table 1 in direction: baselines weak and strong both high with a small gap."""
    tmp, _ = runs
    means = {}
    for name in (*METHODS, "agentic"):
        exs = lines(tmp / name / "examples.jsonl")
        means[name] = (fmean(e["weak"]["mean"] for e in exs), fmean(e["strong"]["mean"] for e in exs))
    for m in METHODS:
        weak, strong = means[m]
        assert weak >= 0.55 and strong >= 0.6 and strong - weak < 0.12, (m, weak, strong)
        share = fmean(e["meets_acceptance"] for e in lines(tmp / m / "examples.jsonl"))
        assert share <= 0.35, (m, share)
    weak, strong = means["agentic"]
    assert weak <= 0.5 and strong - weak >= 0.3


def test_self_instruct_sees_no_document_and_is_checked_against_its_own_context():
    doc = Document("doc-1", "x.md", "A title", "SECRET-DOCUMENT-TEXT about enzymes. " * 20, "md")
    seeds = load_seeds(None)
    prompts: dict[str, str] = {}

    class Recorder:
        async def structured(self, endpoint, messages, output, *, role, sample):
            prompts[output.__name__] = messages[0]["content"]
            assert role == "challenger" and sample == 4
            return None

    async def go():
        for m in METHODS.values():
            await proposer(m, "challenger", seeds, run_seed=0)(Recorder(), doc, 4, ["round 1: too easy"])

    asyncio.run(go())
    si, gr, cot = prompts["SelfInstructOutput"], prompts["GroundedOutput"], prompts["CotSelfInstructOutput"]
    assert "SECRET-DOCUMENT-TEXT" not in si and si.count("<example") == 3
    assert "SECRET-DOCUMENT-TEXT" in gr and "<example" not in gr
    assert "SECRET-DOCUMENT-TEXT" in cot and cot.count("<example") == 2 and "reasoning" in cot
    assert all("too easy" not in p for p in prompts.values())  # one-shot: no feedback reaches the writer
    example = ChallengerOutput(
        question_type="t",
        reasoning_skills=[],
        context="its own context",
        question="q?",
        reference_answer="a",
        rubric=[{"criterion": "c", "weight": 1}],
    )
    assert own_context(doc, example).text == "its own context" and own_context(doc, example).id == doc.id
    assert pick_seeds(seeds, "doc-1", 0, 3) == pick_seeds(seeds, "doc-1", 0, 3) != pick_seeds(seeds, "doc-2", 0, 3)


def test_seed_files_are_checked(tmp_path):
    good = tmp_path / "seeds.jsonl"
    good.write_text(
        '{"question": "Why?", "reference_answer": "Because."}\n\n{"question": "How?", "reference_answer": "So."}\n'
    )
    assert [s["question"] for s in load_seeds(good)] == ["Why?", "How?"]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "Why?", "reference_answer": "Because."}\n{"question": "no answer"}\n')
    with pytest.raises(UserError, match=r"bad.jsonl:2: a seed task needs"):
        load_seeds(bad)
    bad.write_text("not json\n")
    with pytest.raises(UserError, match=r"bad.jsonl:1: not JSON"):
        load_seeds(bad)
    with pytest.raises(UserError, match="cannot read"):
        load_seeds(tmp_path / "missing.jsonl")
    assert len(load_seeds(None)) == 8


def test_answer_consistency_needs_a_majority_that_matches_the_reference():
    assert answer_consistency("3/4", ["0.75", "Answer: 75%", "\\boxed{0.75}", "0.5"]).passed
    c = answer_consistency("3/4", ["0.75", "0.5", "0.5", "0.5"])
    assert not c.passed and c.agreeing == 1 and c.majority_answer == "0.5"
    tie = answer_consistency("2", ["2", "2", "3", "3"])
    assert not tie.passed and tie.agreeing == 2  # k/2 is no majority
    unusable = answer_consistency("2x+1", ["1 + 2*x", None, "", "   "])
    assert not unusable.passed and unusable.agreeing == 1 and unusable.total == 4  # failures count against
    assert answer_consistency("2x+1", ["1 + 2*x", "x*2+1", None]).passed
    empty = answer_consistency("1", [None, None])
    assert not empty.passed and empty.majority_answer is None


def test_answer_consistency_filter_drops_and_records(tmp_path):
    """Prose answers never equal a prose reference as short answers: the filter drops every example."""
    cfg = config(tmp_path)
    summary = asyncio.run(run_baseline(cfg, tmp_path / "cot", "cot-self-instruct", limit=4, answer_check=True))
    b = summary["baseline"]
    assert b["evaluated"] == 0 and b["answer_inconsistent"] >= 2
    assert lines(tmp_path / "cot" / "examples.jsonl") == []
    verdicts = [
        e["rounds"][0]["quality"]["answer_consistency"]
        for e in lines(tmp_path / "cot" / "episodes.jsonl")
        if (e["rounds"][0]["quality"] or {}).get("answer_consistency")
    ]
    assert len(verdicts) == b["answer_inconsistent"] and all(not v["passed"] and v["total"] == 3 for v in verdicts)


def test_cli_baseline_resumes_with_zero_calls_and_refuses_another_method(tmp_path):
    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "autodata", *args], capture_output=True, text=True, timeout=120, cwd=ROOT
        )

    out = tmp_path / "b"
    first = cli("baseline", "examples/quickstart.yaml", "--method", "grounded", "--out", str(out), "--limit", "3", "-q")
    assert first.returncode == 0, first.stderr
    assert "SIMULATED" in first.stderr and "grounded:" in first.stdout and "examples evaluated" in first.stdout
    again = cli("baseline", "examples/quickstart.yaml", "--method", "grounded", "--out", str(out), "--limit", "3", "-q")
    assert again.returncode == 0, again.stderr
    assert json.loads((out / "summary.json").read_text())["documents"]["finished_before_this_session"] == 3
    db = sqlite3.connect(str(out / "run.db"))
    usage = json.loads(db.execute("SELECT usage FROM sessions ORDER BY rowid DESC LIMIT 1").fetchone()[0])
    db.close()
    assert usage["total"]["calls"] == 0
    other = cli("baseline", "examples/quickstart.yaml", "--method", "self-instruct", "--out", str(out), "--limit", "3")
    assert other.returncode == 2 and "another recipe" in other.stderr
    bad = cli("baseline", "examples/quickstart.yaml", "--method", "evol-instruct", "--out", str(tmp_path / "x"))
    assert bad.returncode == 2 and "unknown baseline method 'evol-instruct'" in bad.stderr


def test_cot_self_instruct_under_the_verifiable_profile_filters_by_answer_consistency(tmp_path):
    """Wired to the profile: on by default for CoT Self-Instruct with exact answers, off for the others."""
    data = yaml.safe_load((ROOT / "examples" / "verifiable.yaml").read_text())
    data["documents"]["paths"] = [str(ROOT / "examples" / "corpus" / "papers")]
    data["cache"] = {"path": str(tmp_path / "cache.sqlite")}
    cfg = validate_config(data)

    async def go():
        cot = await run_baseline(cfg, tmp_path / "cot", "cot-self-instruct")
        grounded = await run_baseline(cfg, tmp_path / "grounded", "grounded")
        return cot, grounded

    cot, grounded = asyncio.run(go())
    b = cot["baseline"]
    assert b["answer_inconsistent"] >= 1 and b["evaluated"] >= 8
    for ex in lines(tmp_path / "cot" / "examples.jsonl"):
        assert ex["rubric"][0]["category"] == "exact answer" and ex["solution"].startswith("Put x =")
        assert len(ex["strong"]["attempts"]) == 4  # the profile's k
        strong_right = sum(a["score"] for a in ex["strong"]["attempts"])
        assert strong_right >= 3  # kept: the strong solver's majority reproduced the writer's answer
    dropped = [
        r["rounds"][0]
        for r in lines(tmp_path / "cot" / "episodes.jsonl")
        if not ((r["rounds"][0]["quality"] or {}).get("answer_consistency") or {"passed": True})["passed"]
    ]
    assert len(dropped) == b["answer_inconsistent"]
    assert all(sum(a["score"] for a in r["strong"]) <= 2 for r in dropped)
    assert grounded["baseline"]["answer_inconsistent"] == 0
    assert all(
        "answer_consistency" not in (e["rounds"][0]["quality"] or {})
        for e in lines(tmp_path / "grounded" / "episodes.jsonl")
    )
    mis = [
        e
        for e in lines(tmp_path / "grounded" / "examples.jsonl")
        if sum(a["score"] for a in e["strong"]["attempts"]) <= 1
    ]
    assert mis  # without the filter, problems the writer mis-solved stay in the data set
