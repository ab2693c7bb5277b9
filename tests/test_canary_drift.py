"""The optimizer's canary tells a changed model from sampling noise (meta/optimizer.canary_drift).

A canary of one task with 4 attempts a side moved its weak mean by +45 points between two seeds on
the code profile, with nothing changed, and the fixed 25-point tolerance stopped the run as
tampered. The rule is now a permutation test over the attempts, stratified by task, and a shift must
also exceed ``optimize.canary_tolerance``. Real drift is still caught: here on fabricated scores, and
end to end in tests/test_optimize.py (a weak model swapped behind the same name)."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest

from autodata.config import load_config
from autodata.errors import ConfigError
from autodata.meta import optimizer as opt_mod
from autodata.meta.optimizer import Optimizer, canary_drift

ROOT = Path(__file__).resolve().parents[1]


def checked(base: dict, now: dict, *overrides: str, tmp_path: Path) -> tuple[str | None, dict]:
    """check_canary of an optimizer whose canary re-solve returns ``now`` (baseline ``base``)."""
    opt = Optimizer(load_config(ROOT / "examples/optimize.yaml", list(overrides)), tmp_path / "opt")
    opt.state["canary"] = {"examples": [{"question": "q"}], "baseline": base, "checks": []}
    opt.state["next_iteration"] = 4

    async def solve(self, seed_offset):
        return now

    opt._solve_canaries = solve.__get__(opt)
    return asyncio.run(opt.check_canary()), opt.state["canary"]


def sides(weak: list[list[float]], strong: list[list[float]]) -> dict:
    mean = lambda ts: sum(map(sum, ts)) / sum(map(len, ts))  # noqa: E731
    return {"weak": mean(weak), "strong": mean(strong), "tasks": {"weak": weak, "strong": strong}}


def test_one_task_of_four_attempts_moving_45_points_is_noise_not_tampering(tmp_path):
    # the reported case: the same code task, two seeds, weak unit-test pass fractions
    base = sides([[0.0, 0.0, 1.0, 0.2]], [[1.0, 1.0, 0.8, 1.0]])
    now = sides([[1.0, 0.6, 1.0, 0.4]], [[1.0, 0.8, 1.0, 1.0]])
    assert now["weak"] - base["weak"] == pytest.approx(0.45)
    stopped, canary = checked(base, now, tmp_path=tmp_path)
    assert stopped is None
    check = canary["checks"][0]
    assert check["shift"]["weak"] == pytest.approx(0.45) and check["p_value"]["weak"] > 0.1


def test_even_a_complete_flip_of_one_task_of_four_attempts_cannot_reach_p_001():
    # 8 attempts ordered by side: 2 of the C(8, 4) = 70 relabellings are as extreme
    t = canary_drift([[0, 0, 0, 0]], [[1, 1, 1, 1]], alpha=0.01, floor=0.25)
    assert t["shift"] == 1.0 and t["p_value"] == pytest.approx(2 / 70, abs=0.006) and not t["drifted"]


def test_a_weak_model_changed_behind_the_same_name_is_caught(tmp_path):
    rng = random.Random(0)
    was = [[rng.uniform(0.0, 0.6) for _ in range(4)] for _ in range(3)]
    got = [[rng.uniform(0.8, 1.0) for _ in range(4)] for _ in range(3)]
    strong = [[1.0, 0.9, 1.0, 0.95]] * 3
    stopped, canary = checked(sides(was, strong), sides(got, strong), tmp_path=tmp_path)
    assert stopped is not None and stopped.startswith("canary set shifted beyond tolerance (weak mean moved +")
    assert "strong" not in stopped.split("(")[1].split(";")[0]
    assert canary["checks"][0]["p_value"]["weak"] < 0.01


def test_a_judge_that_got_lenient_moves_both_sides_and_is_caught():
    was = [[0.2, 0.4, 0.3], [0.5, 0.6, 0.4], [0.1, 0.0, 0.3]]
    got = [[0.9, 1.0, 0.95], [1.0, 1.0, 0.9], [0.85, 0.9, 1.0]]
    assert canary_drift(was, got, alpha=0.01, floor=0.25)["drifted"]
    assert canary_drift(got, was, alpha=0.01, floor=0.25)["drifted"]  # two-sided: a stricter judge too


def test_a_significant_shift_below_the_tolerance_is_not_a_stop():
    was = [[0.50] * 8] * 4
    got = [[0.60] * 8] * 4  # certain, but 10 points: within optimize.canary_tolerance
    t = canary_drift(was, got, alpha=0.01, floor=0.25)
    assert t["p_value"] < 0.01 and not t["drifted"]
    assert canary_drift(was, got, alpha=0.01, floor=0.05)["drifted"]


def noisy_canaries(rng: random.Random) -> tuple[list[list[float]], list[list[float]]]:
    """Two checks of 3 unchanged tasks, 4 attempts each: half pass/fail, half rubric-like fractions."""

    def draw(p: float) -> list[float]:
        return [float(rng.random() < p) if rng.random() < 0.5 else min(1, max(0, rng.gauss(p, 0.3))) for _ in range(4)]

    ps = [rng.random() for _ in range(3)]
    return [draw(p) for p in ps], [draw(p) for p in ps]


def test_noise_stops_a_run_at_most_about_alpha_of_the_time(monkeypatch):
    monkeypatch.setattr(opt_mod, "CANARY_DRAWS", 400)
    rng = random.Random(7)
    pairs = [noisy_canaries(rng) for _ in range(300)]
    stops = sum(canary_drift(b, n, alpha=0.01, floor=0.25)["drifted"] for b, n in pairs)
    fixed = sum(abs(canary_drift(b, n, alpha=1, floor=0)["shift"]) > 0.25 for b, n in pairs)
    assert stops <= 6  # 1 % of 300 is 3
    assert fixed > 3 * max(stops, 1)  # the fixed 25-point rule stopped far more often


def test_a_state_with_only_the_means_keeps_the_fixed_tolerance(tmp_path):
    stopped, _ = checked({"weak": 0.2, "strong": 0.9}, sides([[0.9] * 4], [[0.9] * 4]), tmp_path=tmp_path)
    assert stopped is not None and "weak mean moved +70 points" in stopped


def test_canary_alpha_is_checked_with_its_key():
    with pytest.raises(ConfigError) as err:
        load_config(ROOT / "examples/optimize.yaml", ["optimize.canary_alpha=1.5"])
    assert any("optimize.canary_alpha" in d for d in err.value.details)
