"""Domain profiles as config: verifiable (answers checked in code) and legal (loop judge), end to end."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest

from autodata.config import load_config
from autodata.errors import ConfigError
from autodata.judging.acceptance import decide, preset
from autodata.judging.rubric import score
from autodata.judging.scoring import EXACT_CRITERION
from autodata.judging.verifiable import equivalent
from autodata.loop.episode import EpisodeSettings, Round, Steps
from autodata.loop.run import run, run_roles, settings_from

ROOT = Path(__file__).resolve().parents[1]


def lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def run_example(name: str, out: Path, limit: int, *overrides: str) -> dict:
    cfg = load_config(ROOT / "examples" / f"{name}.yaml", list(overrides))
    cwd = Path.cwd()
    try:  # example configs name documents relative to the project root
        os.chdir(ROOT)
        return asyncio.run(run(cfg, out, limit=limit, use_cache=False))
    finally:
        os.chdir(cwd)


# ---------------------------------------------------------------------------------- config


def test_profiles_pick_their_preset_and_sample_counts_unless_the_config_says_otherwise():
    v = settings_from(load_config(ROOT / "examples/verifiable.yaml"))
    assert (v.profile.name, v.preset.name, v.k_weak, v.k_strong) == ("verifiable", "verifiable", 4, 4)
    v2 = settings_from(
        load_config(ROOT / "examples/verifiable.yaml", ["loop.k_weak=6", "loop.acceptance.preset=prose"])
    )
    assert (v2.preset.name, v2.k_weak, v2.k_strong) == ("prose", 6, 4)
    legal = settings_from(load_config(ROOT / "examples/legal.yaml"))
    assert legal.preset.name == "judge" and legal.preset.judge_loop and legal.preset.gap_min == 0.2
    assert settings_from(load_config(ROOT / "examples/quickstart.yaml")).preset.name == "deployed"


def test_roles_follow_the_profile():
    # verifiable needs no judge; legal's loop judge falls back to the judge's model
    assert "judge" not in run_roles(load_config(ROOT / "examples/verifiable.yaml"))
    roles = run_roles(load_config(ROOT / "examples/legal.yaml", ["roles.loop_judge=strong"]))
    assert roles["loop_judge"] == "strong" and roles["judge"] == "judge"
    cfg = load_config(ROOT / "examples/legal.yaml")
    cfg.roles.pop("loop_judge")
    assert run_roles(cfg)["loop_judge"] == "judge"
    cfg = load_config(ROOT / "examples/quickstart.yaml", ["loop.orchestrator=agent"])
    with pytest.raises(ConfigError) as err:
        run_roles(cfg)
    assert "roles.orchestrator: required" in str(err.value.details)


def test_unknown_profile_names_the_key_and_the_choices(tmp_path):
    with pytest.raises(ConfigError) as err:
        load_config(ROOT / "examples/quickstart.yaml", ["loop.profile=math"])
    text = str(err.value) + " ".join(err.value.details)
    assert "loop.profile" in text and "verifiable" in text and "legal" in text


# ---------------------------------------------------------------------------------- verifiable


@pytest.fixture(scope="module")
def verifiable_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("verifiable") / "run"
    summary = run_example("verifiable", out, 10)
    return out, summary


def test_verifiable_examples_are_checked_in_code_and_pass_the_preset(verifiable_run):
    out, summary = verifiable_run
    examples = lines(out / "examples.jsonl")
    assert summary["documents"]["accepted"] == len(examples) >= 5
    assert "judge" not in summary["usage_by_role"]  # no judge call in this profile
    p = preset("verifiable")
    forms_differ = 0
    for ex in examples:
        assert ex["profile"] == "verifiable"
        assert ex["rubric"] == [{"criterion": EXACT_CRITERION, "weight": 1, "category": "exact answer"}]
        assert len(ex["reference_answer"]) <= 80
        for side in ("weak", "strong"):
            assert len(ex[side]["attempts"]) == 4
            for a in ex[side]["attempts"]:  # recompute every mark from the stored answer
                right = int(equivalent(a["answer"], ex["reference_answer"]))
                assert a["marks"] == [right] and a["score"] == float(right)
                forms_differ += right and a["answer"].strip().split()[-1] != ex["reference_answer"]
        weak = [a["score"] for a in ex["weak"]["attempts"]]
        strong = [a["score"] for a in ex["strong"]["attempts"]]
        assert sum(weak) <= 1 and sum(strong) >= 3
        assert decide(p, quality_passed=True, weak=weak, strong=strong).accepted
    assert forms_differ > 0  # right answers written differently (\\frac, decimals) were still recognised


def test_verifiable_rounds_record_answer_consistency(verifiable_run):
    out, _ = verifiable_run
    accepted = [
        r for e in lines(out / "episodes.jsonl") for r in e["rounds"] if r["decision"] and r["decision"]["accepted"]
    ]
    assert accepted
    for r in accepted:
        c = r["consistency"]
        assert c["matches_reference"] and c["votes"] >= 3 and c["of"] == 4
    codes = {
        c["code"]
        for e in lines(out / "episodes.jsonl")
        for r in e["rounds"]
        if r["decision"]
        for c in r["decision"]["reasons"]
    }
    assert "weak_too_many_correct" in codes  # first tries are too easy here too


# ---------------------------------------------------------------------------------- legal


@pytest.fixture(scope="module")
def legal_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("legal") / "run"
    return out, run_example("legal", out, 6)


def test_legal_examples_have_the_loop_judges_accept_and_pass_the_code_checks(legal_run):
    out, summary = legal_run
    examples = lines(out / "examples.jsonl")
    assert examples and all(ex["profile"] == "legal" for ex in examples)
    assert summary["usage_by_role"]["loop_judge"]["calls"] >= len(examples)
    eps = {e["document_id"]: e for e in lines(out / "episodes.jsonl")}
    p = preset("judge", gap_min=0.2)
    for ex in examples:
        rnd = next(r for r in eps[ex["document_id"]]["rounds"] if r["decision"] and r["decision"]["accepted"])
        assert rnd["loop_judge"]["verdict"] == "accept"
        weights = [c["weight"] for c in ex["rubric"]]
        weak = [score(weights, a["marks"]) for a in ex["weak"]["attempts"]]
        strong = [score(weights, a["marks"]) for a in ex["strong"]["attempts"]]
        assert decide(p, quality_passed=True, weak=weak, strong=strong, judge_verdict="accept").accepted
    improve = [r for e in eps.values() for r in e["rounds"] if r.get("loop_judge", {}).get("verdict") == "improve"]
    assert improve and all(any(c["code"] == "judge_improve" for c in r["decision"]["reasons"]) for r in improve)
    # the loop judge's reasons reach the challenger as feedback in the next round
    assert all(r["feedback"] and r["feedback"][-1].startswith("loop judge asks to improve") for r in improve)


def _settings(name: str) -> EpisodeSettings:
    return settings_from(load_config(ROOT / "examples" / f"{name}.yaml"))


def test_code_checks_veto_the_loop_judges_accept_and_no_verdict_is_never_an_accept():
    from autodata.loop.episode import Attempt

    steps = Steps(None, None, _settings("legal"))  # type: ignore[arg-type]  (decision() is pure)
    rnd = Round(0, weak=[Attempt("a", [1], 0.5)] * 3, strong=[Attempt("b", [1], 0.6)] * 3)
    rnd.loop_judge = {"verdict": "accept", "reasons": []}
    d = steps.decision(rnd, quality_passed=True)
    assert not d.accepted and d.codes == ["gap_too_small"]  # a 10-point gap: the judge's accept is vetoed
    rnd.strong = [Attempt("b", [1], 0.9)] * 3
    assert steps.decision(rnd, quality_passed=True).accepted
    assert steps.decision(rnd, quality_passed=False).codes == ["quality_failed"]
    rnd.loop_judge = {"verdict": None, "reasons": [], "error": "invalid output"}
    d = steps.decision(rnd, quality_passed=True)
    assert not d.accepted and d.codes == ["judge_improve"] and "no usable verdict" in d.reasons[0].message
