"""The training reward judges exactly as the filter did: the same judge prompt (the context shown when
the config's ``loop.judge_sees_context`` is on, not otherwise) and, for the instruction profile, the
same split (constraints checked in code, only the rest of the rubric marked by the judge).

Both runs here are in-process on the simulated ladder, so every judge prompt the filter rendered can be
recorded and compared with those the reward renders. TRL's and verl's call shapes: see test_rewards.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import pytest

from autodata import api
from autodata.export.write import export
from autodata.judging import judge
from autodata.judging.constraints import CHECKED_PREFIX
from autodata.rewards import RubricReward, compute_score
from test_rewards import stored_attempts, trl_batch

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _offline(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("AUTODATA_CACHE_DIR", str(tmp_path / "cache"))
    datasets.disable_progress_bars()


@pytest.fixture
def judge_prompts(monkeypatch):
    """Every judge prompt rendered in this process, in order."""
    seen: list[str] = []
    real = judge.render

    def spy(name: str, **kw):
        text = real(name, **kw)
        if name == "judge.j2":
            seen.append(text)
        return text

    monkeypatch.setattr(judge, "render", spy)
    return seen


def _run(config: str, out: Path, limit: int, overrides: list[str] | None = None) -> Path:
    cfg = api.load_config(ROOT / config, overrides)
    cfg.documents.paths = [str(ROOT / p) for p in cfg.documents.paths]
    api.generate(cfg, out=out, limit=limit, use_cache=False)
    return out


def _rl_rows(run: Path, tmp: Path) -> list[dict]:
    path = export(run, "rl", tmp / "rl.parquet").path
    return list(datasets.Dataset.from_parquet(str(path), cache_dir=str(tmp / "c")))


@pytest.mark.parametrize("sees_context", [False, True])
def test_rubric_reward_judges_with_the_context_exactly_when_the_filter_did(tmp_path, judge_prompts, sees_context):
    run = _run(
        "examples/quickstart.yaml", tmp_path / "run", 3, [f"loop.judge_sees_context={str(sees_context).lower()}"]
    )
    filter_prompts = set(judge_prompts)
    assert filter_prompts and all(("<context>" in p) == sees_context for p in filter_prompts)
    rows = _rl_rows(run, tmp_path)
    assert rows, "the quick start accepted nothing on 3 documents"
    stored = stored_attempts(run / "examples.jsonl")
    answers = [[a for a, _ in stored[r["id"]]] for r in rows]
    expected = [s for r in rows for _, s in stored[r["id"]]]

    judge_prompts.clear()
    reward = RubricReward(run)  # the run's saved config: judge_sees_context as the run had it
    try:
        got = reward(**trl_batch(rows, answers, conversational=True))
    finally:
        reward.close()
    assert got == pytest.approx(expected)
    # the same judge input as the filter's, prompt for prompt (the context shown only when it was)
    assert judge_prompts and set(judge_prompts) <= filter_prompts

    judge_prompts.clear()
    verl = [
        compute_score(r["data_source"], a, r["reward_model"]["ground_truth"], r["extra_info"], config=str(run))
        for r, group in zip(rows, answers, strict=True)
        for a in group
    ]
    assert verl == pytest.approx(expected)
    assert set(judge_prompts) <= filter_prompts


def test_instruction_reward_checks_constraints_in_code_and_judges_only_the_rest(tmp_path, judge_prompts):
    run = _run("examples/instruction.yaml", tmp_path / "run", 4)
    filter_prompts = set(judge_prompts)
    rows = _rl_rows(run, tmp_path)
    assert rows, "the instruction example accepted nothing on 4 documents"
    assert all(json.loads(r["extra_info"]["constraints"]) for r in rows)  # the export carries them
    stored = stored_attempts(run / "examples.jsonl")
    answers = [[a for a, _ in stored[r["id"]]] for r in rows]
    expected = [s for r in rows for _, s in stored[r["id"]]]
    assert len(set(expected)) > 1

    judge_prompts.clear()
    reward = RubricReward(run)
    try:
        for conversational in (True, False):
            assert reward(**trl_batch(rows, answers, conversational=conversational)) == pytest.approx(expected)
    finally:
        reward.close()
    # the judge never marks a criterion the filter checked in code, and sees what the filter's judge saw
    assert judge_prompts and not any(CHECKED_PREFIX.strip() in p for p in judge_prompts)
    assert set(judge_prompts) <= filter_prompts

    verl = [
        compute_score(r["data_source"], a, r["reward_model"]["ground_truth"], r["extra_info"], config=str(run))
        for r, group in zip(rows, answers, strict=True)
        for a in group
    ]
    assert verl == pytest.approx(expected)

    # a row that lost its constraints is refused, never judged whole
    bad = dict(rows[0])
    bad["extra_info"] = {**bad["extra_info"], "constraints": "[]"}
    with pytest.raises(ValueError, match="constraints"):
        compute_score(bad["data_source"], answers[0][0], "", bad["extra_info"], config=str(run))
