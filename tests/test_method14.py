"""Issue 14: the method as the paper runs it (rubric rules, judge framing, challenger inputs, trajectory)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from autodata.config import load_config, validate_config
from autodata.documents import Document
from autodata.errors import ConfigError
from autodata.judging.rubric import Criterion, RubricRules, check_rubric
from autodata.llm.backends import Reply
from autodata.llm.runtime import ModelRuntime
from autodata.loop.run import settings_from
from autodata.meta.recipe import frozen_hash
from autodata.roles import challenger
from autodata.roles.schemas import ChallengerOutput
from autodata.sim.ladder import SimulatedLadder

ROOT = Path(__file__).resolve().parents[1]
DOC = Document(
    id="doc-1",
    source="x.md",
    title="A Paper",
    format="md",
    meta={},
    text="Gradient clipping bounds the update. Warmup schedules stabilise early training. " * 20,
)


class Capture:
    """A backend that records the request body and answers with the simulated ladder."""

    def __init__(self, model: str = "sim-challenger") -> None:
        self.label = "capture"
        self.model = model
        self.bodies: list[dict[str, Any]] = []
        self.ladder = SimulatedLadder(fault_rate=0.0)

    async def send(self, body: dict[str, Any]) -> Reply:
        self.bodies.append(body)
        status, payload = self.ladder.respond({**body, "model": self.model})
        assert status == 200, payload
        return Reply(payload, {})

    async def aclose(self) -> None:
        return None

    def prompt(self, i: int = -1) -> str:
        return self.bodies[i]["messages"][-1]["content"]


def runtime(backend: Capture) -> ModelRuntime:
    cfg = validate_config({"models": {"m": {"provider": "openai", "model": "x", "base_url": "http://127.0.0.1:9/v1"}}})
    return ModelRuntime(cfg, backends={"m": [backend]})


# ------------------------------------------------------------------------------------------ 1. rubric rules


def test_loop_rubric_defaults_to_the_paper_and_reaches_the_episode_settings():
    cfg = load_config(ROOT / "examples" / "quickstart.yaml")
    rules = settings_from(cfg).rubric_rules
    assert rules == RubricRules()
    assert (rules.min_negative, rules.max_abs_weight) == (0, 7)
    assert check_rubric([Criterion("a", 7), Criterion("b", 2), Criterion("c", 1)], rules) == []
    cfg2 = load_config(ROOT / "examples" / "quickstart.yaml", overrides=["loop.rubric.max_weight=3"])
    assert settings_from(cfg2).rubric_rules.max_abs_weight == 3


def test_bad_rubric_bounds_name_the_key():
    with pytest.raises(ConfigError) as info:
        validate_config({"loop": {"rubric": {"min_negative": 3, "max_negative": 1}}})
    assert "loop.rubric.min_negative" in info.value.render()


def test_frozen_hash_covers_the_rubric_rules():
    cfg = load_config(ROOT / "examples" / "optimize.yaml")
    other = load_config(ROOT / "examples" / "optimize.yaml", overrides=["loop.rubric.max_weight=10"])
    assert frozen_hash(cfg) != frozen_hash(other)


@pytest.mark.parametrize(
    "rules",
    [
        RubricRules(),
        RubricRules(min_positive=8, max_positive=10, min_negative=0, max_negative=0, max_abs_weight=2),
        RubricRules(min_positive=3, max_positive=4, min_negative=2, max_negative=3, max_abs_weight=7),
    ],
)
async def test_simulated_challenger_honours_the_rules_block(rules):
    b = Capture()
    res = await challenger.propose(runtime(b), "m", DOC, instructions="", rules=rules)
    assert "<rubric_rules>" in b.prompt()
    assert isinstance(res.value, ChallengerOutput)
    crit = [Criterion(c.criterion, c.weight, c.category) for c in res.value.rubric]
    assert check_rubric(crit, rules) == []
