"""The instruction profile: IFEval-style constraints checked in code, the rest of the rubric by the judge."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import ValidationError

from autodata.judging.constraints import CHECKED_PREFIX, Constraint, check, describe, words
from autodata.judging.schemas import RubricItem
from autodata.judging.scoring import InstructionChecks, Scored, scorer
from autodata.loop.profile import profile
from autodata.roles.schemas import InstructionOutput


def C(kind: str, value=None) -> Constraint:
    return Constraint(kind=kind, value=value)


@pytest.mark.parametrize(
    ("constraint", "good", "bad"),
    [
        (C("max_words", 5), "one two three four five", "one two three four five six"),
        (C("min_words", 3), "a b c", "a b"),
        (C("json"), '{"a": [1, 2]}', "a: 1"),
        (C("json"), '```json\n{"a": 1}\n```', '```json\n{"a": 1,}\n```'),
        (C("include_keywords", ["cache", "Lock"]), "The lock guards the cache.", "The cache is fast."),
        (C("exclude_keywords", ["simply"]), "It works.", "It simply works."),
        (C("exclude_keywords", ["cat"]), "A category.", "A cat."),  # whole words only
        (C("bullet_count", 2), "Intro\n- one\n- two", "- one\n- two\n* three"),
        (C("language", "de"), "Dies ist ein kurzer Satz über das Wetter in Berlin.", "This is English."),
    ],
)
def test_each_constraint_kind_is_checked_in_code(constraint, good, bad):
    assert check(constraint, good) and not check(constraint, bad)
    assert describe(constraint)


def test_constraint_values_are_validated():
    with pytest.raises(ValidationError):
        Constraint(kind="max_words", value="ten")
    with pytest.raises(ValidationError):
        Constraint(kind="include_keywords", value=[])
    with pytest.raises(ValidationError):
        Constraint(kind="language", value="English")
    assert Constraint(kind="include_keywords", value="one").value == ["one"]
    assert words("Hello, world -- 42 !") == 3


def task() -> InstructionOutput:
    return InstructionOutput(
        question_type="briefing",
        reasoning_skills=["summarising"],
        context="The cache stores answers; a lock guards it.",
        instruction="Brief a new colleague on the cache.",
        constraints=[C("bullet_count", 2), C("include_keywords", ["lock"])],
        reference_answer="The cache:\n- stores answers\n- is guarded by a lock",
        rubric=[RubricItem(criterion="The answer mentions 'answers'", weight=2)],
    )


def test_the_example_shows_the_requirements_and_puts_checked_criteria_first():
    ex = task().to_example()
    assert "Requirements:\n- the answer has exactly 2 bullet points" in ex.question
    assert [r.criterion.startswith(CHECKED_PREFIX) for r in ex.rubric] == [True, True, False]
    assert profile("instruction").scorer == "instruction-checks" and profile("instruction").preset == "prose"


def test_the_scorer_marks_constraints_in_code_and_asks_the_judge_only_for_the_rest(monkeypatch):
    from autodata.judging import judge, scoring

    asked: list[list[str]] = []

    async def mark(runtime, endpoint, question, rubric, answer, *, sample=0, context=None):
        asked.append([r.criterion for r in rubric])
        return judge.Marking(marks=[1] * len(rubric), evidence=["q"] * len(rubric), repairs=[])

    monkeypatch.setattr(scoring.judge, "mark", mark)
    s = scorer("instruction-checks")
    assert isinstance(s, InstructionChecks) and s.needs_judge
    ex = task().to_example()
    got: Scored = asyncio.run(s.score(None, "judge", ex, "- stores answers\n- fast", sample=0))  # type: ignore[arg-type]
    assert got.marks == [1, 0, 1] and asked == [["The answer mentions 'answers'"]]
    assert got.score == pytest.approx(3 / 4)  # weights 1, 1, 2
    assert got.details == {
        "constraints": [{"kind": "bullet_count", "met": True}, {"kind": "include_keywords", "met": False}]
    }
    problems, _ = asyncio.run(s.check_example(ex))
    assert problems == []
    bad = task().model_copy(update={"reference_answer": "no bullets"}).to_example()
    problems, _ = asyncio.run(s.check_example(bad))
    assert len(problems) == 2 and "does not meet its own constraint" in problems[0]


def test_examples_instruction_yaml_runs_offline_end_to_end(tmp_path):
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    from autodata.judging.constraints import Constraint as Con

    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "AUTODATA_CACHE_DIR": str(tmp_path / "cache")}
    out = tmp_path / "run"
    args = [sys.executable, "-m", "autodata", "run", "examples/instruction.yaml", "--out", str(out), "--limit", "4"]
    res = subprocess.run([*args, "-q"], cwd=root, env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["documents"]["accepted"] >= 1
    episodes = [json.loads(x) for x in (out / "episodes.jsonl").read_text().splitlines()]
    for ep in episodes:
        for r in ep["rounds"]:
            ex = r.get("example") or {}
            for a in r["weak"] + (r["strong"] or []):
                if a.get("marks") is None:
                    continue
                # every constraint's mark is what the code check says about the stored answer
                cons = [Con.model_validate(c) for c in ex["constraints"]]
                assert a["marks"][: len(cons)] == [int(check(c, a["answer"])) for c in cons]
