"""The baseline writers get the rubric rules (``loop.rubric``) as the loop's challenger does: in prose and
as the structured ``<rubric_rules>`` JSON block; a rubric written to the block passes the verifier's
structural check under rules other than the defaults."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from autodata.baselines.generators import METHODS, proposer
from autodata.documents import Document
from autodata.judging.rubric import RubricRules

ROOT = Path(__file__).resolve().parents[1]
SEEDS = [{"context": "", "question": f"Why does X{i} hold?", "reference_answer": f"Because Y{i}."} for i in range(3)]


class Recorder:
    """A runtime that records the prompt it is asked with and answers nothing."""

    def __init__(self) -> None:
        self.prompts: list[str] = []

    async def structured(self, endpoint, messages, output, **kw):
        self.prompts.append(messages[-1]["content"])
        return output.__name__


def prompt_of(name: str, rules: RubricRules, short: bool = False) -> str:
    rt = Recorder()
    doc = Document(id="d1", source="d1", title="T", text="A document about caches.", format="txt")
    asyncio.run(proposer(METHODS[name], "w", SEEDS, run_seed=0, rules=rules, short_answer=short)(rt, doc, 0, []))
    return rt.prompts[0]


@pytest.mark.parametrize("name", list(METHODS))
def test_every_writer_gets_the_rubric_rules_block_of_loop_rubric(name):
    rules = RubricRules(min_positive=2, max_positive=4, min_negative=0, max_negative=0, max_abs_weight=3)
    prompt = prompt_of(name, rules)
    blocks = re.findall(r"<rubric_rules>\n(.*?)\n</rubric_rules>", prompt, re.S)
    assert len(blocks) == 1 and json.loads(blocks[0]) == rules.as_block()
    for field in ("criterion", "weight", "category"):  # every rubric item field is named
        assert f"`{field}`" in prompt
    assert "negative weights" not in prompt  # max_negative 0: no negative criteria asked for
    # the verifiable form has no rubric, so no rules
    assert "<rubric_rules>" not in prompt_of(name, rules, short=True)


def test_a_baseline_under_tighter_rubric_rules_writes_rubrics_that_pass_them(tmp_path):
    out = tmp_path / "bl"
    env = {**os.environ, "AUTODATA_CACHE_DIR": str(tmp_path / "cache")}
    args = ["baseline", "examples/quickstart.yaml", "--method", "grounded", "--out", str(out), "--limit", "3", "-q",
            "--set", "loop.rubric.max_weight=2", "--set", "loop.rubric.max_negative=0"]  # fmt: skip
    res = subprocess.run(
        [sys.executable, "-m", "autodata", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert res.returncode == 0, res.stderr
    tally = json.loads((out / "summary.json").read_text())["baseline"]
    assert tally["evaluated"] >= 2, tally  # the writers' rubrics were not refused for their structure
    examples = [json.loads(x) for x in (out / "examples.jsonl").read_text().splitlines()]
    weights = [c["weight"] for e in examples for c in e["rubric"]]
    assert weights and all(1 <= w <= 2 for w in weights)
