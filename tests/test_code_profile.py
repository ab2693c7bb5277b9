"""The code profile's pieces: the scorer, the task example, the run's sandbox, exports and rewards."""

from __future__ import annotations

import asyncio
import shutil

import pytest

from autodata.config import validate_config
from autodata.errors import UserError
from autodata.export.rows import rl_row, sft_row
from autodata.judging.scoring import CodeTests, Unscorable, scorer
from autodata.loop.profile import profile
from autodata.loop.run import sandbox_for
from autodata.rewards import code_reward, compute_code_score, compute_score
from autodata.roles.schemas import CodeTaskOutput
from autodata.sandbox import Limits, SubprocessExecutor
from autodata.sim.code_bank import BY_NAME

TASK = BY_NAME["window_sums"]
FAST = Limits(cpu_seconds=3, wall_seconds=20)  # generous wall time: CI machines are shared
WEAK_SANDBOX = {"kind": "subprocess", "limits": {"cpu_seconds": 3, "wall_seconds": 20}}


def example():
    return CodeTaskOutput(
        question_type="algorithm",
        reasoning_skills=["edge cases"],
        statement=TASK.statement,
        signature=TASK.signature,
        reference_solution=TASK.reference,
        tests=TASK.tests,
    ).to_example()


def fenced(code: str) -> str:
    return f"Here it is.\n\n```python\n{code}```\n"


def test_the_task_becomes_an_example_whose_tests_stay_hidden():
    ex = example()
    assert ex.entry_point == "window_sums" and "`window_sums`" in ex.question
    assert TASK.signature in ex.context and "def test_" not in ex.context and TASK.reference not in ex.context
    assert ex.reference_answer == TASK.reference and ex.tests == TASK.tests
    assert len(ex.rubric) == 1 and "unit tests" in ex.rubric[0].criterion
    assert profile("code").scorer == "code-tests" and profile("code").reward_style == "rule"
    assert profile("code").preset == "code"


def test_the_scorer_runs_the_answer_and_counts_tests():
    s = scorer("code-tests").configured(SubprocessExecutor(FAST))
    assert isinstance(s, CodeTests) and s.needs_sandbox and not s.needs_judge
    ex = example()

    async def go():
        good = await s.score(None, None, ex, fenced(TASK.reference), sample=0)  # type: ignore[arg-type]
        bug = await s.score(None, None, ex, fenced(TASK.bugs["off-by-one"]), sample=0)  # type: ignore[arg-type]
        with pytest.raises(Unscorable, match="no Python code"):
            await s.score(None, None, ex, "I would add up each window.", sample=0)  # type: ignore[arg-type]
        problems, measured = await s.check_example(ex)
        return good, bug, problems, measured

    good, bug, problems, measured = asyncio.run(go())
    assert (good.score, good.marks) == (1.0, [1]) and good.details["passed"] == good.details["total"] == 5
    assert 0 < bug.score < 1 and bug.marks == [0] and "passed" in bug.evidence[0]
    assert bug.details["failures"] and bug.details["seconds"] >= 0
    assert problems == [] and set(measured["runs"]) == {
        "reference",
        "returns None",
        "body is pass",
        "returns its input",
    }


def test_the_run_refuses_the_code_profile_without_bwrap(monkeypatch: pytest.MonkeyPatch):
    base = {
        "models": {"m": {"provider": "simulated", "model": "sim-strong"}},
        "roles": {r: "m" for r in ("challenger", "quality_verifier", "weak_solver", "strong_solver")},
        "loop": {"profile": "code"},
    }
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None)
    with pytest.raises(UserError) as e:
        sandbox_for(validate_config(base))
    assert "apt-get install -y bubblewrap" in e.value.message and "sandbox.kind: subprocess" in e.value.message
    ex = sandbox_for(validate_config({**base, "sandbox": WEAK_SANDBOX}))
    assert isinstance(ex, SubprocessExecutor)  # the explicit opt-in
    assert sandbox_for(validate_config({**base, "loop": {"profile": "rubric-qa"}})) is None


def record(score: float = 1.0) -> dict:
    ex = example()
    answer = fenced(TASK.reference if score == 1.0 else TASK.bugs["off-by-one"])
    return {
        "id": "ex-1",
        "document_id": "doc-1",
        "profile": "code",
        "question_type": "algorithm",
        "context": ex.context,
        "question": ex.question,
        "reference_answer": ex.reference_answer,
        "rubric": [r.model_dump() for r in ex.rubric],
        "code": {"tests": ex.tests, "signature": ex.signature, "entry_point": ex.entry_point},
        "strong": {"attempts": [{"answer": answer, "score": score, "marks": [int(score == 1.0)]}]},
    }


def test_rl_rows_carry_the_tests_and_sft_rows_a_passing_solution():
    row = rl_row(record(), 0)
    assert row["data_source"] == "autodata/code"
    assert row["reward_model"] == {"style": "rule", "ground_truth": TASK.tests}
    sft = sft_row(record())
    assert sft["answer_source"] == "strong_solver" and TASK.reference in sft["messages"][-1]["content"]
    partial = sft_row(record(0.6))  # no strong attempt passed every test: the reference solution is imitated
    assert partial["answer_source"] == "reference_answer"
    assert partial["messages"][-1]["content"] == f"```python\n{TASK.reference.rstrip()}\n```"


def test_the_code_reward_runs_the_same_sandbox(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "models: {m: {provider: simulated, model: sim-strong}}\n"
        "sandbox: {kind: subprocess, limits: {cpu_seconds: 3, wall_seconds: 20}}\n"
    )
    completions = [fenced(TASK.reference), fenced(TASK.bugs["wrong type"]), "no code here"]
    rm = [{"style": "rule", "ground_truth": TASK.tests}] * 3
    got = code_reward(None, completions, config=str(cfg), reward_model=rm)
    assert got[0] == 1.0 and 0 <= got[1] < 1 and got[2] == 0.0
    assert compute_score("autodata/code", completions[0], TASK.tests, {}, config=str(cfg)) == 1.0
    assert compute_code_score("autodata/code", completions[1], TASK.tests, config=str(cfg)) == got[1]
