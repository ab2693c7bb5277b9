"""`autodata.rewards` called exactly as TRL and verl call reward functions, on exported rows.

The call shapes are the trainers' documented ones (no trainer is installed, no model weights):

- TRL GRPOTrainer, "Using a custom reward function" (huggingface.co/docs/trl/main/en/grpo_trainer):
  keyword arguments ``prompts``, ``completions``, ``completion_ids``, ``trainer_state`` and every dataset
  column but ``prompt``, one list entry per completion (each prompt repeated ``num_generations`` times);
  standard format: strings; conversational format: lists of ``{"role", "content"}`` messages, a
  completion being ``[{"role": "assistant", "content": ...}]``. Returns a list of floats.
- verl, "Implement Reward Function for Dataset" (verl.readthedocs.io/en/latest/preparation/reward_function.html):
  ``compute_score(data_source, solution_str, ground_truth, extra_info)`` per response, ``ground_truth``
  being the row's ``reward_model["ground_truth"]`` and ``extra_info`` its ``extra_info``; extra keyword
  arguments from ``custom_reward_function.reward_kwargs``.

The judge is the simulated ladder; the values must equal the scores the filter stored for the same answers.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import datasets
import pytest

from autodata import rewards
from autodata.export.write import export
from autodata.rewards import (
    RubricReward,
    completion_text,
    compute_rubric_score,
    compute_score,
    compute_verifiable_score,
    rubric_reward,
    verifiable_reward,
)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _offline_datasets(monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    datasets.disable_progress_bars()


def trl_batch(rows: list[dict[str, Any]], answers: list[list[str]], *, conversational: bool) -> dict[str, Any]:
    """The keyword arguments GRPOTrainer passes: one entry per completion, each row's columns repeated
    for each of its generations; ``prompt`` itself is passed as ``prompts``, never as a column."""
    prompts, completions, columns = [], [], {}
    for row, group in zip(rows, answers, strict=True):
        for answer in group:
            if conversational:
                prompts.append(row["prompt"])
                completions.append([{"role": "assistant", "content": answer}])
            else:
                prompts.append(row["prompt"][-1]["content"])
                completions.append(answer)
            for name, value in row.items():
                if name != "prompt":
                    columns.setdefault(name, []).append(value)
    ids = [[1, 2, 3] for _ in completions]  # completion_ids: token ids, unused by our rewards
    return {"prompts": prompts, "completions": completions, "completion_ids": ids, "trainer_state": None, **columns}


def stored_attempts(examples_path: Path) -> dict[str, list[tuple[str, float]]]:
    """(answer, stored score) of every scored weak and strong attempt, by example id."""
    out: dict[str, list[tuple[str, float]]] = {}
    for line in examples_path.read_text().splitlines():
        e = json.loads(line)
        got = [
            (a["answer"], a["score"])
            for side in ("weak", "strong")
            for a in e[side]["attempts"]
            if a.get("answer") and a.get("score") is not None
        ]
        out[e["id"]] = got
    return out


# ------------------------------------------------------------------------------------------ shapes


def test_completion_text_reads_both_trl_formats():
    assert completion_text("Final answer: 3") == "Final answer: 3"
    assert completion_text([{"role": "assistant", "content": "Final answer: 3"}]) == "Final answer: 3"
    parts = [{"role": "assistant", "content": [{"type": "text", "text": "Final "}, {"type": "text", "text": "3"}]}]
    assert completion_text(parts) == "Final 3"
    assert completion_text("<think>hmm, 2 or 3</think>\nFinal answer: 3") == "Final answer: 3"
    with pytest.raises(TypeError, match="standard format"):
        completion_text(3)


@pytest.mark.parametrize("conversational", [False, True])
def test_verifiable_reward_in_both_formats(conversational):
    row = {
        "prompt": [{"role": "user", "content": "What is 3/4 as a decimal?"}],
        "reference_answer": "3/4",
        "reward_model": {"style": "rule", "ground_truth": "3/4"},
    }
    batch = trl_batch(
        [row], [["Final answer: 0.75", "\\boxed{\\dfrac{3}{4}}", "Final answer: 0.76"]], conversational=conversational
    )
    assert verifiable_reward(**batch) == [1.0, 1.0, 0.0]
    del batch["reference_answer"]  # reward_model.ground_truth is enough
    assert verifiable_reward(**batch) == [1.0, 1.0, 0.0]
    del batch["reward_model"]
    with pytest.raises(ValueError, match="reference_answer"):
        verifiable_reward(**batch)
    assert compute_verifiable_score("autodata/verifiable", "so \\boxed{0.75}", "3/4") == 1.0


def test_rubric_reward_needs_a_config_naming_the_env_variable(monkeypatch):
    monkeypatch.delenv(rewards.CONFIG_ENV, raising=False)
    with pytest.raises(Exception, match=rewards.CONFIG_ENV):
        RubricReward()


# ------------------------------------------------------------------------------------------ on exported rows


def test_rubric_reward_on_exported_rows_equals_the_stored_scores(sim_run, tmp_path):
    rl = datasets.Dataset.from_parquet(
        str(export(sim_run, "rl", tmp_path / "rl.parquet").path), cache_dir=str(tmp_path / "c")
    )
    rows = list(rl)
    stored = stored_attempts(sim_run / "examples.jsonl")
    answers = [[a for a, _ in stored[r["id"]]] for r in rows]
    expected = [s for r in rows for _, s in stored[r["id"]]]
    assert len(expected) >= 20 and len(set(expected)) > 2  # a real spread of scores, not all 0 or 1

    reward = RubricReward(ROOT / "examples/quickstart.yaml")  # the config the run was made with
    try:
        for conversational in (True, False):
            got = reward(**trl_batch(rows, answers, conversational=conversational))
            assert got == pytest.approx(expected)
    finally:
        reward.close()
    assert reward.__name__ == "rubric_reward" and verifiable_reward.__name__ == "verifiable_reward"  # TRL logs these

    # verl: one call per response, the config through reward_kwargs; and from the run's saved config
    verl = [
        compute_score(r["data_source"], a, r["reward_model"]["ground_truth"], r["extra_info"], config=str(sim_run))
        for r, group in zip(rows, answers, strict=True)
        for a in group
    ]
    assert verl == pytest.approx(expected)
    assert compute_rubric_score("x", answers[0][0], "", rows[0]["extra_info"], config=str(sim_run)) == pytest.approx(
        expected[0]
    )


def test_verifiable_reward_on_exported_rows_equals_the_stored_scores(verifiable_run, tmp_path):
    rl = datasets.Dataset.from_parquet(
        str(export(verifiable_run, "rl", tmp_path / "rl.parquet").path), cache_dir=str(tmp_path / "c")
    )
    rows = list(rl)
    assert rows and {r["reward_model"]["style"] for r in rows} == {"rule"}
    stored = stored_attempts(verifiable_run / "examples.jsonl")
    answers = [[a for a, _ in stored[r["id"]]] for r in rows]
    expected = [s for r in rows for _, s in stored[r["id"]]]
    assert 0.0 in expected and 1.0 in expected
    for conversational in (True, False):
        batch = trl_batch(rows, answers, conversational=conversational)
        assert verifiable_reward(**batch) == expected
        # the rubric reward scores a "rule" row the way the filter did: in code, no judge call
        assert rubric_reward(**batch, config=str(verifiable_run)) == expected
    verl = [
        compute_score(r["data_source"], a, r["reward_model"]["ground_truth"], r["extra_info"])
        for r, group in zip(rows, answers, strict=True)
        for a in group
    ]
    assert verl == expected


def test_rubric_reward_works_inside_a_running_event_loop(sim_run, tmp_path):
    """A notebook calls the reward from inside its own event loop."""
    import asyncio

    rl = datasets.Dataset.from_parquet(
        str(export(sim_run, "rl", tmp_path / "rl.parquet").path), cache_dir=str(tmp_path / "c")
    )
    row = rl[0]
    stored = stored_attempts(sim_run / "examples.jsonl")[row["id"]]

    async def inside() -> list[float | None]:
        return rubric_reward(**trl_batch([row], [[stored[0][0]]], conversational=True), config=str(sim_run))

    assert asyncio.run(inside()) == pytest.approx([stored[0][1]])


# ------------------------------------------------------------------------------------------ end to end


def test_end_to_end_run_export_load_and_reward(tmp_path):
    """Quick start and the verifiable example into a tmp dir, `autodata export --format rl`, loaded with
    `datasets`, both rewards computed as TRL and verl call them, compared with the stored scores."""
    env_cache = {"AUTODATA_CACHE_DIR": str(tmp_path / "cache")}
    import os

    env = {**os.environ, **env_cache, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}
    for config, limit in (("examples/quickstart.yaml", 3), ("examples/verifiable.yaml", 2)):
        run = tmp_path / Path(config).stem
        out = tmp_path / f"{run.name}-rl"
        for args in (
            ["run", config, "--out", str(run), "--limit", str(limit), "-q"],
            ["export", str(run), "--format", "rl", "--out", str(out / "rl.parquet")],
        ):
            res = subprocess.run(
                [sys.executable, "-m", "autodata", *args],
                capture_output=True,
                text=True,
                timeout=300,
                cwd=ROOT,
                env=env,
            )
            assert res.returncode == 0, res.stderr
        rows = list(
            datasets.load_dataset("parquet", data_files=str(out / "rl.parquet"), cache_dir=str(tmp_path / "hf"))[
                "train"
            ]
        )
        assert rows, f"{config}: no example exported"
        stored = stored_attempts(run / "examples.jsonl")
        answers = [[a for a, _ in stored[r["id"]]] for r in rows]
        expected = [s for r in rows for _, s in stored[r["id"]]]
        batch = trl_batch(rows, answers, conversational=True)
        if rows[0]["reward_model"]["style"] == "rule":
            assert verifiable_reward(**batch) == expected
        reward = RubricReward(run)
        try:
            assert reward(**batch) == pytest.approx(expected)
        finally:
            reward.close()
        verl = [
            compute_score(r["data_source"], a, r["reward_model"]["ground_truth"], r["extra_info"], config=str(run))
            for r, group in zip(rows, answers, strict=True)
            for a in group
        ]
        assert verl == pytest.approx(expected)


def test_the_reasoning_columns_of_an_rl_export_never_reach_the_judge(run_copy, tmp_path, monkeypatch):
    """Issue 14: an rl export with ``--include trajectory,reasoning`` carries the solvers' reasoning for
    training, and TRL passes every column to a reward function; the judge still sees only the question,
    rubric and the completion, so the scores are the stored ones and no reasoning is in its prompt."""
    import sqlite3

    from autodata.llm.runtime import ModelRuntime

    con = sqlite3.connect(run_copy / "run.db", isolation_level=None)
    for ex_id, data in con.execute("SELECT id, data FROM examples").fetchall():
        e = json.loads(data)
        for side in ("weak", "strong"):
            for a in e[side]["attempts"]:
                a["reasoning"] = "SECRET-THOUGHT weighing the options"
        con.execute("UPDATE examples SET data = ? WHERE id = ?", (json.dumps(e), ex_id))
    con.close()
    path = export(run_copy, "rl", tmp_path / "rl.parquet", include="trajectory,reasoning").path
    rows = list(datasets.Dataset.from_parquet(str(path), cache_dir=str(tmp_path / "c")))[:2]
    assert "SECRET-THOUGHT" in json.dumps(rows)  # the export does carry it
    stored = stored_attempts(run_copy / "examples.jsonl")
    answers = [[a for a, _ in stored[r["id"]]] for r in rows]
    expected = [s for r in rows for _, s in stored[r["id"]]]

    seen: list[str] = []
    original = ModelRuntime.structured

    async def spy(self, endpoint, messages, *args, **kwargs):
        seen.extend(str(m.get("content")) for m in messages)
        return await original(self, endpoint, messages, *args, **kwargs)

    monkeypatch.setattr(ModelRuntime, "structured", spy)
    reward = RubricReward(ROOT / "examples/quickstart.yaml")
    try:
        assert reward(**trl_batch(rows, answers, conversational=True)) == pytest.approx(expected)
    finally:
        reward.close()
    assert seen and not any("SECRET-THOUGHT" in text for text in seen)
