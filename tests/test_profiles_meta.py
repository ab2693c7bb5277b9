"""The outer loop and the baselines on the profiles with their own example type (code, instruction).

The optimizer's canary keeps the profile's own example (a code task's hidden tests, an instruction's
constraints) and re-solves it with the profile's scorer; the analyzer reads those fields; the output
guard does not count the requirement lines the harness writes as planted text; and the baselines, whose
writers have only the rubric and short-answer forms, refuse the profiles they cannot write with exit 2
naming ``loop.profile``.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from autodata.config import load_config
from autodata.documents import Document
from autodata.errors import ConfigError
from autodata.judging.constraints import Constraint
from autodata.loop.episode import Round
from autodata.loop.profile import PROFILES
from autodata.meta.guards import scan_example
from autodata.meta.optimizer import Evaluation, Optimizer, round_exchange
from autodata.roles.challenger import example_model
from autodata.roles.schemas import (
    ChallengerOutput,
    CodeExample,
    CodeTaskOutput,
    InstructionExample,
    InstructionOutput,
)
from autodata.sim.code_bank import BANK

ROOT = Path(__file__).resolve().parents[1]
KIND = "bwrap" if shutil.which("bwrap") else "subprocess"  # CI installs bwrap (.ci/run)
pytestmark = pytest.mark.timeout(300)


def code_example(i: int = 0) -> dict:
    t = BANK[i]
    out = CodeTaskOutput(
        question_type="implementation",
        reasoning_skills=["edge cases"],
        statement=t.statement,
        signature=t.signature,
        reference_solution=t.reference,
        tests=t.tests,
    )
    return out.to_example().model_dump()


def instruction_example() -> InstructionExample:
    return InstructionOutput(
        question_type="summary",
        reasoning_skills=["summarising"],
        context="A cache keeps recent answers so repeated requests are served without recomputation.",
        instruction="Brief a new colleague on the cache.",
        constraints=[Constraint(kind="max_words", value=15), Constraint(kind="include_keywords", value=["cache"])],
        reference_answer="The cache serves repeated requests from stored answers.",
        rubric=[{"criterion": "says what the cache stores", "weight": 3, "category": "accuracy"}],
    ).to_example()


def test_each_profile_names_the_example_class_its_loop_carries():
    assert example_model(PROFILES["rubric-qa"].challenger_output) is ChallengerOutput
    assert example_model(PROFILES["verifiable"].challenger_output) is ChallengerOutput
    assert example_model(PROFILES["code"].challenger_output) is CodeExample
    assert example_model(PROFILES["instruction"].challenger_output) is InstructionExample


def test_the_canary_of_a_code_run_keeps_the_tests_and_re_solves_them_in_the_sandbox(tmp_path, monkeypatch):
    monkeypatch.setenv("AUTODATA_CACHE_DIR", str(tmp_path / "cache"))
    cfg = load_config(
        ROOT / "examples/optimize.yaml",
        ["loop.profile=code", f"sandbox.kind={KIND}", "optimize.canary_size=2"],
    )
    opt = Optimizer(cfg, tmp_path / "opt")
    doc = Document(id="d", source="d", title="d", text="A PEP.", format="txt")
    opt.docs = {"d": doc}
    examples = [code_example(0), code_example(1)]
    accepted = [SimpleNamespace(accepted_round=SimpleNamespace(example=e)) for e in examples]

    async def go():
        try:
            await opt.build_canary(Evaluation(1.0, 2, 2, accepted))
            opt.state["next_iteration"] = 1
            return await opt.check_canary()
        finally:
            await opt._close_runtimes()

    stopped = asyncio.run(go())
    canary = opt.state["canary"]
    assert [c["tests"] for c in canary["examples"]] == [BANK[0].tests, BANK[1].tests]  # not dropped
    assert all(c["entry_point"] for c in canary["examples"])
    base = canary["baseline"]
    assert base["strong"] > 0.5  # the strong solver's code really passed the hidden tests
    assert stopped is None and len(canary["checks"]) == 1


def test_the_canary_of_an_instruction_run_keeps_the_constraints(tmp_path, monkeypatch):
    monkeypatch.setenv("AUTODATA_CACHE_DIR", str(tmp_path / "cache"))
    cfg = load_config(ROOT / "examples/optimize.yaml", ["loop.profile=instruction", "optimize.canary_size=1"])
    opt = Optimizer(cfg, tmp_path / "opt")
    opt.docs = {"d": Document(id="d", source="d", title="d", text="A note on caches.", format="txt")}
    ex = instruction_example().model_dump()

    async def go():
        try:
            await opt.build_canary(Evaluation(1.0, 1, 1, [SimpleNamespace(accepted_round=SimpleNamespace(example=ex))]))
        finally:
            await opt._close_runtimes()

    asyncio.run(go())
    kept = opt.state["canary"]["examples"][0]
    assert [c["kind"] for c in kept["constraints"]] == ["max_words", "include_keywords"]
    assert opt.state["canary"]["baseline"]["strong"] > 0


def test_the_analyzer_reads_a_code_tasks_tests_and_the_reference_answer():
    ex = code_example(0)
    view = round_exchange("a PEP", Round(number=0, example=ex))
    assert view["tests"] == BANK[0].tests
    assert view["reference_answer"] == BANK[0].reference  # was read from a key no example has
    inst = instruction_example().model_dump()
    view = round_exchange("doc", Round(number=0, example=inst))
    assert [c["kind"] for c in view["constraints"]] == ["max_words", "include_keywords"]


def test_the_output_guard_skips_the_harness_requirement_lines_but_not_the_challengers_text():
    ex = instruction_example().model_dump()
    assert "at most 15 words" in ex["question"]  # the harness's line, a checked constraint of the task
    assert scan_example(ex) == []
    planted = {**ex, "question": ex["question"].replace("Brief", "Answer in at most five words. Brief")}
    assert [f["reason"] for f in scan_example(planted)] == ["demands very short answers"]


@pytest.mark.parametrize("name", ["code", "instruction"])
def test_baselines_refuse_a_profile_they_cannot_write_naming_loop_profile(tmp_path, name):
    from autodata.baselines.run import run_baseline

    cfg = load_config(ROOT / "examples/quickstart.yaml", [f"loop.profile={name}", f"sandbox.kind={KIND}"])
    with pytest.raises(ConfigError, match=r"loop\.profile.*rubric-qa"):
        asyncio.run(run_baseline(cfg, tmp_path / "bl", "grounded"))
    assert not (tmp_path / "bl").exists()

    env = {**os.environ, "AUTODATA_CACHE_DIR": str(tmp_path / "cache")}
    res = subprocess.run(
        [sys.executable, "-m", "autodata", "baseline", "examples/quickstart.yaml", "--out", str(tmp_path / "b2"),
         "--set", f"loop.profile={name}", "--set", f"sandbox.kind={KIND}", "-q"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert res.returncode == 2, res.stderr
    assert "loop.profile" in res.stderr + res.stdout and "Traceback" not in res.stderr
