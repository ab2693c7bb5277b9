"""`autodata export`: every format loaded back with the library that consumes it (datasets, pyarrow),
the default selection before and after review, edited text, the dataset card."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import datasets
import pyarrow.parquet as pq
import pytest

from autodata.errors import UserError
from autodata.export.write import export
from autodata.judging.solver import solver_messages
from autodata.store.reviews import ReviewLog

ROOT = Path(__file__).resolve().parents[1]


def lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


@pytest.fixture(autouse=True)
def _offline_datasets(monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    datasets.disable_progress_bars()


def load(fmt: str, path: Path, cache: Path) -> datasets.Dataset:
    if fmt == "hf":
        return datasets.load_from_disk(str(path))
    if path.suffix == ".jsonl":
        return datasets.Dataset.from_json(str(path), cache_dir=str(cache))
    return datasets.Dataset.from_parquet(str(path), cache_dir=str(cache))


def test_every_format_loads_back_with_all_accepted_examples(sim_run, tmp_path):
    examples = lines(sim_run / "examples.jsonl")
    n = len(examples)
    got = {}
    for fmt, name in (
        ("jsonl", "x.jsonl"),
        ("parquet", "x.parquet"),
        ("hf", "hf"),
        ("rl", "rl.parquet"),
        ("sft", "sft.parquet"),
    ):
        res = export(sim_run, fmt, tmp_path / name)
        assert (res.rows, res.include) == (n, "accepted")  # nobody reviewed: every accepted example
        ds = load(fmt, res.path, tmp_path / "cache")
        assert ds.num_rows == n
        got[fmt] = ds
        if res.path.suffix == ".parquet":
            assert pq.read_table(res.path).num_rows == n

    for fmt in ("jsonl", "parquet", "hf"):
        ds = got[fmt]
        assert ds["id"] == [e["id"] for e in examples]
        assert ds["question"] == [e["question"] for e in examples]
        assert ds["rubric"][0] == examples[0]["rubric"]
        assert ds["strong_attempts"][1][2]["marks"] == examples[1]["strong"]["attempts"][2]["marks"]
        assert ds["strong_attempts"][1][2]["evidence"] == examples[1]["strong"]["attempts"][2]["evidence"]
        assert ds["gap"] == pytest.approx([e["gap"] for e in examples])
        assert set(ds["review_status"]) == {"unreviewed"} and not any(ds["edited"])
        assert ds["models"][0] == examples[0]["models"]

    rl = got["rl"]
    assert set(rl.column_names) >= {"data_source", "prompt", "ability", "reward_model", "extra_info", "rubric"}
    for i, (row, ex) in enumerate(zip(rl, examples, strict=True)):
        assert row["prompt"] == solver_messages(ex["context"], ex["question"])  # what the solvers saw
        assert row["reward_model"] == {"style": "rubric", "ground_truth": ex["reference_answer"]}
        assert row["extra_info"]["index"] == i and row["extra_info"]["rubric"] == ex["rubric"]
        assert row["rubric"] == ex["rubric"] and row["data_source"] == "autodata/rubric-qa"

    sft = got["sft"]
    for row, ex in zip(sft, examples, strict=True):
        best = max(ex["strong"]["attempts"], key=lambda a: a["score"])
        assert [m["role"] for m in row["messages"]] == ["user", "assistant"]
        assert row["messages"][0]["content"] == solver_messages(ex["context"], ex["question"])[0]["content"]
        assert row["messages"][1]["content"] == best["answer"]
        assert (row["answer_source"], row["score"]) == ("strong_solver", best["score"])


def review(run_dir: Path, examples: list[dict]) -> None:
    log = ReviewLog(sqlite3.connect(run_dir / "run.db", isolation_level=None))
    log.record(examples[0]["id"], "approve", reviewer="ada")
    log.record(examples[1]["id"], "approve", reviewer="ada")
    log.record(
        examples[1]["id"],
        "edit",
        reviewer="ada",
        payload={"question": "Edited question?", "rubric": [{"criterion": "says X", "weight": 3}]},
    )
    log.record(examples[2]["id"], "reject", reviewer="bob", reason="leaks the answer")
    log.record(examples[3]["id"], "approve", reviewer="bob")
    log.record(examples[3]["id"], "reopen", reviewer="bob")  # changed their mind: unreviewed again


def test_review_decisions_choose_what_is_exported_and_edits_are_exported(run_copy, tmp_path):
    examples = lines(run_copy / "examples.jsonl")
    review(run_copy, examples)
    res = export(run_copy, "parquet", tmp_path / "a.parquet")
    assert res.include == "approved" and res.rows == 2
    table = datasets.Dataset.from_parquet(str(res.path), cache_dir=str(tmp_path / "cache"))
    assert table["id"] == [examples[0]["id"], examples[1]["id"]]
    edited = table[1]
    assert edited["question"] == "Edited question?" and edited["original_question"] == examples[1]["question"]
    assert edited["rubric"] == [{"criterion": "says X", "weight": 3, "category": ""}]
    assert edited["original_rubric"] == examples[1]["rubric"]
    assert edited["reference_answer"] == examples[1]["reference_answer"] and edited["original_reference_answer"] is None
    assert edited["edited"] and edited["review_status"] == "approved" and edited["reviewer"] == "ada"

    unrejected = export(run_copy, "jsonl", tmp_path / "u.jsonl", include="unrejected")
    assert unrejected.rows == len(examples) - 1
    assert examples[2]["id"] not in {r["id"] for r in lines(unrejected.path)}
    everything = export(run_copy, "jsonl", tmp_path / "all.jsonl", include="accepted")
    rows = {r["id"]: r for r in lines(everything.path)}
    assert len(rows) == len(examples)
    assert rows[examples[2]["id"]]["review_reason"] == "leaks the answer"
    assert rows[examples[3]["id"]]["review_status"] == "unreviewed"

    rl = datasets.Dataset.from_parquet(
        str(export(run_copy, "rl", tmp_path / "rl.parquet").path), cache_dir=str(tmp_path / "cache")
    )
    assert "Edited question?" in rl[1]["prompt"][0]["content"] and rl[1]["rubric"][0]["criterion"] == "says X"
    sft = datasets.Dataset.from_parquet(
        str(export(run_copy, "sft", tmp_path / "sft.parquet").path), cache_dir=str(tmp_path / "cache")
    )
    # no solver answered the edited question, so its answer is the reference answer
    assert sft[1]["answer_source"] == "reference_answer"
    assert sft[1]["messages"][1]["content"] == examples[1]["reference_answer"]
    assert sft[0]["answer_source"] == "strong_solver"


def test_dataset_card_records_recipe_models_preset_and_counts(run_copy, tmp_path):
    examples = lines(run_copy / "examples.jsonl")
    review(run_copy, examples)
    summary = json.loads((run_copy / "summary.json").read_text())
    res = export(run_copy, "hf", tmp_path / "hf")
    card = (res.path / "README.md").read_text()
    assert card == res.card
    assert f"recipe hash: `{summary['recipe_hash']}`" in card
    assert "acceptance preset: `deployed` (" in card and "gap_min 0.2" in card
    assert "| weak_solver | sim-weak |" in card and "| strong_solver | sim-strong |" in card
    assert f"| accepted by the harness | {len(examples)} |" in card
    assert f"| documents in the run | {summary['documents']['total']} |" in card
    assert "| exported here | 2 |" in card and "| rejected by a reviewer | 1 |" in card
    assert "| edited by a reviewer | 1 |" in card and "SIMULATED" in card
    assert datasets.load_from_disk(str(res.path)).num_rows == 2


def test_push_to_hub_uploads_the_saved_dataset_and_its_card(run_copy, tmp_path, monkeypatch):
    """The Hub client is replaced: tests never reach the network."""
    import huggingface_hub

    pushed = []
    monkeypatch.setattr(
        datasets.Dataset, "push_to_hub", lambda self, repo, **kw: pushed.append(("data", repo, self.num_rows))
    )
    monkeypatch.setattr(
        huggingface_hub.DatasetCard,
        "push_to_hub",
        lambda self, repo, **kw: pushed.append(("card", repo, kw.get("repo_type"))),
    )
    res = export(run_copy, "hf", tmp_path / "hf", push_to_hub="someone/autodata-test")
    assert pushed == [("data", "someone/autodata-test", res.rows), ("card", "someone/autodata-test", "dataset")]
    assert "pretty_name: someone/autodata-test" in res.card


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "autodata", *args], capture_output=True, text=True, timeout=120, cwd=ROOT
    )


def test_export_command(sim_run, tmp_path):
    res = cli("export", str(sim_run), "--format", "sft", "--out", str(tmp_path / "s.jsonl"))
    assert res.returncode == 0, res.stderr
    n = len(lines(sim_run / "examples.jsonl"))
    assert f"{n} rows (sft; every example the harness accepted" in res.stdout
    assert len(lines(tmp_path / "s.jsonl")) == n
    res = cli("export", str(sim_run), "--format", "csv")
    assert res.returncode == 2 and "--format must be one of" in res.stderr and "Traceback" not in res.stderr
    for kwargs, message in (
        ({"fmt": "jsonl", "push_to_hub": "a/b"}, "--push-to-hub goes with --format hf"),
        ({"fmt": "jsonl", "include": "some"}, "--include must be one of"),
    ):
        with pytest.raises(UserError, match=message):
            export(sim_run, out=tmp_path / "o", **kwargs)
    with pytest.raises(UserError, match="not a run directory"):
        export(tmp_path / "missing", "jsonl")


def test_rl_and_sft_prompts_follow_the_profile(verifiable_run, tmp_path):
    examples = lines(verifiable_run / "examples.jsonl")
    assert examples and {e["profile"] for e in examples} == {"verifiable"}
    rl = load("rl", export(verifiable_run, "rl", tmp_path / "rl.parquet").path, tmp_path / "cache")
    sft = load("sft", export(verifiable_run, "sft", tmp_path / "sft.parquet").path, tmp_path / "cache")
    for row, srow, ex in zip(rl, sft, examples, strict=True):
        # the short-answer solver prompt these examples were solved with, not the rubric-qa one
        assert row["prompt"] == solver_messages(ex["context"], ex["question"], "solver_short.j2")
        assert row["prompt"] != solver_messages(ex["context"], ex["question"])
        assert (
            row["data_source"] == "autodata/verifiable"
            and row["reward_model"]["ground_truth"] == ex["reference_answer"]
        )
        assert srow["messages"][0] == row["prompt"][0] and srow["score"] == 1.0


def test_decisions_all_reopened_mean_nobody_reviewed(run_copy, tmp_path):
    examples = lines(run_copy / "examples.jsonl")
    log = ReviewLog(sqlite3.connect(run_copy / "run.db", isolation_level=None))
    log.record(examples[0]["id"], "approve", reviewer="ada")
    log.record(examples[0]["id"], "reopen", reviewer="ada")
    log.record(examples[1]["id"], "note", reviewer="ada", payload="a note is not a decision")
    res = export(run_copy, "jsonl", tmp_path / "x.jsonl")
    assert (res.include, res.rows) == ("accepted", len(examples))
