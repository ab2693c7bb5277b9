"""`autodata export`: every format loaded back with the library that consumes it (datasets, pyarrow),
the default selection before and after review, edited text, the dataset card."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import datasets
import pyarrow.parquet as pq
import pytest
import yaml

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
        # role/model pairs: one type whatever roles a run had
        assert ds["models"][0] == [{"role": r, "model": m} for r, m in examples[0]["models"].items()]

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
    # a field nobody edited: its original is itself (typed in every row, never null)
    assert edited["reference_answer"] == examples[1]["reference_answer"] == edited["original_reference_answer"]
    assert table[0]["original_question"] == table[0]["question"] and table[0]["original_rubric"] == table[0]["rubric"]
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
    assert f"| examples stored in the run | {len(examples)} |" in card
    assert f"| meeting the acceptance predicate | {len(examples)} |" in card
    assert f"| documents in the run | {summary['documents']['total']} |" in card
    assert "| exported here | 2 |" in card and "| rejected by a reviewer | 1 |" in card
    assert "| edited by a reviewer | 1 |" in card and "SIMULATED DATA" in card and "- simulated" in card
    assert f"| left out: left out by the review rule | {len(examples) - 2} |" in card
    assert datasets.load_from_disk(str(res.path)).num_rows == 2
    meta = yaml.safe_load(card.split("---")[1])
    assert meta["license"] == "unknown" and meta["language"] == ["en"]
    assert meta["task_categories"] == ["question-answering", "text-generation"]
    assert meta["size_categories"] == ["n<1K"] and meta["pretty_name"] == "autodata-rubric-qa-run"
    assert re.search(r"frozen hash \(.*\): `[0-9a-f]{16}`", card)
    config = yaml.safe_load(card.split("```yaml")[1].split("```")[0])
    assert config["loop"]["profile"] == "rubric-qa" and config["roles"]["weak_solver"] == "weak"


def test_card_license_and_name_come_from_the_config_or_the_flags(tmp_path):
    run = tmp_path / "run"
    res = cli(
        "run", "examples/quickstart.yaml", "--out", str(run), "--limit", "2", "-q",
        "--set", "dataset.license=cc-by-4.0", "--set", "dataset.name=rubric-qa-papers",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    card = export(run, "hf", tmp_path / "hf").card
    assert "license: cc-by-4.0" in card and "pretty_name: rubric-qa-papers" in card
    card = export(run, "hf", tmp_path / "hf2", license="mit", name="other").card
    assert "license: mit" in card and "# other" in card
    assert "| exported here | 0 |" in card or "size_categories:\n- n<1K" in card


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
    assert f"{n} rows (sft; every example the run kept, reviews aside; {n} examples in the run)" in res.stdout
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
        assert row["data_source"] == "autodata/verifiable" and row["reward_model"] == {
            "style": "rule",
            "ground_truth": ex["reference_answer"],
        }
        assert srow["messages"][0] == row["prompt"][0] and srow["score"] == 1.0


def test_decisions_all_reopened_mean_nobody_reviewed(run_copy, tmp_path):
    examples = lines(run_copy / "examples.jsonl")
    log = ReviewLog(sqlite3.connect(run_copy / "run.db", isolation_level=None))
    log.record(examples[0]["id"], "approve", reviewer="ada")
    log.record(examples[0]["id"], "reopen", reviewer="ada")
    log.record(examples[1]["id"], "note", reviewer="ada", payload="a note is not a decision")
    res = export(run_copy, "jsonl", tmp_path / "x.jsonl")
    assert (res.include, res.rows) == ("accepted", len(examples))


# ------------------------------------------------------------------ exports cannot hurt the run


@pytest.mark.timeout(360)  # 13 CLI processes, each importing pyarrow: 34 s at load 1.5, past 120 s on a loaded machine
def test_export_never_writes_into_the_run_store_and_refuses_to_overwrite(run_copy, tmp_path):
    store_bytes = (run_copy / "run.db").read_bytes()
    (tmp_path / "alias.db").symlink_to(run_copy / "run.db")
    for out in (
        run_copy / "run.db",
        run_copy / "run.db-wal",
        run_copy / "run.db-shm",
        run_copy / "export" / ".." / "run.db",
        tmp_path / "alias.db",
    ):
        res = cli("export", str(run_copy), "--format", "parquet", "--out", str(out), "--force")
        assert res.returncode == 2 and "would overwrite the run store" in res.stderr, (out, res.stderr)
        assert "Traceback" not in res.stderr
    for fmt in ("hf", "jsonl"):
        res = cli("export", str(run_copy), "--format", fmt, "--out", str(run_copy), "--force", "--split", "a=1")
        assert res.returncode == 2 and "run store" in res.stderr
    assert (run_copy / "run.db").read_bytes() == store_bytes
    assert cli("status", str(run_copy)).returncode == 0
    # the run's other files: --force replaced summary.json with export rows, and the command lock with a
    # new file (a second `autodata run` could then lock it beside the one holding the old one)
    (run_copy / ".autodata.lock").touch()
    kept = {name: (run_copy / name).read_bytes() for name in ("summary.json", "examples.jsonl", "episodes.jsonl")}
    for name in (*kept, ".autodata.lock"):
        res = cli("export", str(run_copy), "--format", "jsonl", "--out", str(run_copy / name), "--force")
        assert res.returncode == 2 and "one of the run's own files" in res.stderr, (name, res.stderr)
    assert {name: (run_copy / name).read_bytes() for name in kept} == kept
    assert export(run_copy, "jsonl", run_copy / "mine.jsonl").rows > 0  # a new file beside them is fine

    target = tmp_path / "x.jsonl"
    first = export(run_copy, "jsonl", target)
    with pytest.raises(UserError, match="exists; pass --force"):
        export(run_copy, "jsonl", target)
    assert export(run_copy, "jsonl", target, force=True).rows == first.rows

    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")
    for force in (False, True):
        with pytest.raises(UserError, match=r"not empty|not an earlier export"):
            export(run_copy, "hf", folder, force=force)
    assert (folder / "notes.txt").read_text() == "keep me"
    hf = export(run_copy, "hf", tmp_path / "hf")
    with pytest.raises(UserError, match="not empty"):
        export(run_copy, "hf", hf.path)
    assert export(run_copy, "hf", hf.path, force=True).rows == hf.rows  # an earlier export is replaced
    assert datasets.load_from_disk(str(hf.path)).num_rows == hf.rows
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left behind


# ------------------------------------------------------------------ what passed, and what was flagged


def test_contamination_and_dedup_flags_reach_the_export(run_copy, tmp_path):
    from autodata.analysis.contamination import check_run
    from autodata.analysis.dedup import dedup_run

    examples = lines(run_copy / "examples.jsonl")
    bench = tmp_path / "bench.jsonl"
    bench.write_text(json.dumps({"question": examples[0]["question"]}) + "\n")
    assert check_run(run_copy, bench)["flagged"] == 1  # 100 % overlap
    res = export(run_copy, "jsonl", tmp_path / "a.jsonl")
    assert res.rows == len(examples) - 1 and examples[0]["id"] not in {r["id"] for r in lines(res.path)}
    assert res.selection.excluded == {"contamination": 1}
    assert "left out: 1 flagged by the contamination check" in res.message()

    flagged = export(run_copy, "jsonl", tmp_path / "b.jsonl", include=["flagged"])
    rows = {r["id"]: r for r in lines(flagged.path)}
    assert len(rows) == len(examples) and rows[examples[0]["id"]]["flags"] == "contamination:bench.jsonl"
    assert "100% of its 8-grams are in bench.jsonl" in rows[examples[0]["id"]]["flag_reasons"]
    assert all(rows[e["id"]]["flags"] == "" for e in examples[1:])
    assert "1 exported rows carry flags" in flagged.message()

    # dedup at a threshold that clusters everything: all but one example are flagged as duplicates
    result = dedup_run(run_copy, threshold=0.01, on="task")
    dropped = {d["id"] for c in result["clusters"] for d in c["dropped"]}
    res = export(run_copy, "rl", tmp_path / "c.parquet")
    got = {r["id"] for r in pq.read_table(res.path).to_pylist()}
    assert not got & dropped and examples[0]["id"] not in got
    assert res.selection.flagged == {"contamination": 1, "duplicate": len(dropped)}
    card = export(run_copy, "hf", tmp_path / "hf").card
    assert f"| flagged: duplicate | {len(dropped)} |" in card and "| flagged: contamination | 1 |" in card
    status = cli("status", str(run_copy)).stdout
    assert "flagged by data-set checks (left out of exports unless --include flagged): " in status
    assert f"contamination 1, duplicate {len(dropped)}" in status

    # a new check of the same kind replaces the old verdict (the log keeps both)
    bench.write_text(json.dumps({"question": "nothing like any generated question at all"}) + "\n")
    assert check_run(run_copy, bench)["flagged"] == 0
    assert export(run_copy, "jsonl", tmp_path / "d.jsonl").selection.flagged == {"duplicate": len(dropped)}
    con = sqlite3.connect(run_copy / "run.db")
    assert con.execute("SELECT COUNT(*) FROM flag_checks").fetchone()[0] == 3


@pytest.fixture(scope="module")
def baseline_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("baseline")
    res = subprocess.run(
        [sys.executable, "-m", "autodata", "baseline", "examples/quickstart.yaml", "--out", str(base / "run"),
         "--limit", "5", "-q"],
        capture_output=True, text=True, timeout=180, cwd=ROOT,
        env={**__import__("os").environ, "AUTODATA_CACHE_DIR": str(base / "cache")},
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    return base / "run"


def test_a_baseline_exports_only_what_meets_acceptance_unless_asked(baseline_run, tmp_path):
    stored = lines(baseline_run / "examples.jsonl")
    passing = [e["id"] for e in stored if e["meets_acceptance"]]
    assert len(passing) < len(stored)  # the simulated baseline leaves some below the bar
    res = export(baseline_run, "jsonl", tmp_path / "a.jsonl")
    assert [r["id"] for r in lines(res.path)] == passing
    assert all(r["meets_acceptance"] and r["flags"] == "" for r in lines(res.path))
    assert res.selection.excluded == {"failed_acceptance": len(stored) - len(passing)}
    status = cli("status", str(baseline_run)).stdout
    assert re.search(rf"accepted\s+│\s+{len(passing)} ", status)

    everything = export(baseline_run, "jsonl", tmp_path / "b.jsonl", include="accepted,failed")
    rows = lines(everything.path)
    assert len(rows) == len(stored)
    assert [r["flags"] for r in rows] == ["" if e["meets_acceptance"] else "failed_acceptance" for e in stored]


# ------------------------------------------------------------------ types and splits


def _null_columns(features: datasets.Features) -> dict[str, str]:
    return {k: str(v) for k, v in features.items() if "null" in str(v)}


@pytest.mark.parametrize("run", ["sim_run", "verifiable_run"])
@pytest.mark.parametrize("columns", [(), ("trajectory", "reasoning")])
def test_every_format_has_the_same_non_null_column_types_and_concatenates(run, columns, request, tmp_path):
    """Issue 15: on a run where nothing was flagged, reviewed or edited, a JSONL export loaded with plain
    ``datasets.load_dataset("json", ...)`` (no features given) has the very column types of the Parquet
    and ``datasets`` exports, none of them the null type, in every layout, with and without the
    ``--include`` columns; the formats concatenate."""
    run_dir = request.getfixturevalue(run)
    include = ["auto", *columns]

    def load_plain(path: Path) -> datasets.Dataset:
        kind = "json" if path.suffix == ".jsonl" else "parquet"
        return datasets.load_dataset(kind, data_files=str(path), cache_dir=str(tmp_path / "cache"))["train"]

    for layout, formats in (("examples", ("jsonl", "parquet", "hf")), ("rl", ("rl",)), ("sft", ("sft",))):
        loaded = []
        for fmt in formats:
            if layout == "examples":
                path = export(run_dir, fmt, tmp_path / f"{fmt}-x", include=include).path
                loaded.append(datasets.load_from_disk(str(path)) if fmt == "hf" else None)
                if fmt != "hf":
                    path = path.rename(path.with_suffix(".jsonl" if fmt == "jsonl" else ".parquet"))
                    loaded[-1] = load_plain(path)
            else:
                for suffix in (".jsonl", ".parquet"):
                    loaded.append(load_plain(export(run_dir, fmt, tmp_path / f"{fmt}{suffix}", include=include).path))
        first = loaded[0]
        assert first.num_rows > 0
        for ds in loaded:
            assert _null_columns(ds.features) == {}, (layout, ds.features)
            assert ds.features == first.features, layout
        both = datasets.concatenate_datasets(loaded)
        assert both.num_rows == len(loaded) * first.num_rows
    assert lines(tmp_path / "jsonl-x.jsonl")[0]["flags"] == ""  # nothing flagged: an empty text, not null


def test_the_features_helper_gives_the_exported_types(sim_run, tmp_path):
    from autodata.export.write import features

    hf = datasets.load_from_disk(str(export(sim_run, "hf", tmp_path / "hf").path))
    exact = datasets.Dataset.from_json(
        str(export(sim_run, "jsonl", tmp_path / "x.jsonl").path),
        features=features("jsonl"),
        cache_dir=str(tmp_path / "c2"),
    )
    assert exact.features == hf.features
    for fmt in ("rl", "sft"):
        got = datasets.Dataset.from_parquet(
            str(export(sim_run, fmt, tmp_path / f"{fmt}.parquet", include="trajectory,reasoning").path),
            cache_dir=str(tmp_path / "c3"),
        )
        assert got.features == features(fmt, columns=("trajectory", "reasoning"))


def test_splits_are_cut_by_document_and_seeded(run_copy, tmp_path):
    from autodata.export.rows import parse_split, split_by_document

    examples = lines(run_copy / "examples.jsonl")
    res = export(run_copy, "rl", tmp_path / "rl", split="train=0.5,validation=0.25,test=0.25", seed=3)
    assert sorted(p.name for p in res.path.iterdir()) == [
        "README.md",
        "test.parquet",
        "train.parquet",
        "validation.parquet",
    ]
    assert sum(res.splits.values()) == len(examples) and all(res.splits.values())
    seen: dict[str, str] = {}
    for split in res.splits:
        rows = pq.read_table(res.path / f"{split}.parquet").to_pylist()
        assert [r["extra_info"]["split"] for r in rows] == [split] * len(rows)  # what verl reads
        assert [r["extra_info"]["index"] for r in rows] == list(range(len(rows)))
        for r in rows:
            doc = next(e["document_id"] for e in examples if e["id"] == r["id"])
            assert seen.setdefault(doc, split) == split
    assert "| split `train` (by document) |" in (res.path / "README.md").read_text()
    again = export(run_copy, "rl", tmp_path / "rl2", split="train=0.5,validation=0.25,test=0.25", seed=3)
    assert again.splits == res.splits
    for split in res.splits:
        assert pq.read_table(again.path / f"{split}.parquet").equals(pq.read_table(res.path / f"{split}.parquet"))

    hf = export(run_copy, "hf", tmp_path / "hf", split="train=0.5,test=0.5")
    dd = datasets.load_from_disk(str(hf.path))
    assert set(dd) == {"train", "test"} and sum(d.num_rows for d in dd.values()) == len(examples)
    assert not set(dd["train"]["document_id"]) & set(dd["test"]["document_id"])

    # many examples per document (a grouping by source): a document never straddles two splits
    from types import SimpleNamespace

    many = [SimpleNamespace(id=f"{d}-{i}", document_id=f"doc{d}") for d in range(40) for i in range(3)]
    parts = split_by_document(many, parse_split("train=0.9,validation=0.05,test=0.05"), seed=0)
    assert [len(v) for v in parts.values()] == [108, 6, 6]
    docs = [{e.document_id for e in v} for v in parts.values()]
    assert not (docs[0] & docs[1] or docs[0] & docs[2] or docs[1] & docs[2])
    assert split_by_document(many, parse_split("train=0.9,test=0.1"), seed=1) != split_by_document(
        many, parse_split("train=0.9,test=0.1"), seed=2
    )
    for bad, message in (("train=0.9,test=0.2", "sum to 1"), ("train", "NAME=SHARE"), ("t=x", "NAME=SHARE")):
        with pytest.raises(UserError, match=message):
            parse_split(bad)
    res = cli("export", str(run_copy), "--split", "train=2")
    assert res.returncode == 2 and "--split" in res.stderr


# ------------------------------------------------------------------ --include trajectory / reasoning in rl and sft


def _with_reasoning(run_dir: Path) -> list[dict]:
    """Give every stored attempt (and the trajectory's) a reasoning text, as a server with a reasoning
    parser returns it (the simulated solvers return none); returns the stored examples."""
    con = sqlite3.connect(run_dir / "run.db", isolation_level=None)
    out = []
    for ex_id, data in con.execute("SELECT id, data FROM examples").fetchall():
        e = json.loads(data)
        for side in ("weak", "strong"):
            for i, a in enumerate(e[side]["attempts"]):
                a["reasoning"] = f"THOUGHT {side} {i} of {ex_id}"
        for rnd in e.get("trajectory") or []:
            for side in ("weak", "strong"):
                for i, a in enumerate(rnd.get(side) or []):
                    a["reasoning"] = f"THOUGHT round {rnd['round']} {side} {i}"
        con.execute("UPDATE examples SET data = ? WHERE id = ?", (json.dumps(e), ex_id))
        out.append(e)
    con.close()
    return out


def test_rl_and_sft_exports_carry_the_trajectory_and_reasoning_on_request(run_copy, tmp_path):
    """Issue 14: ``--include trajectory`` / ``--include reasoning`` reach the rl and sft layouts (loaded
    back with ``datasets``), not only the examples layout; without them neither column is there."""
    stored = {e["id"]: e for e in _with_reasoning(run_copy)}

    def load_file(path: Path) -> datasets.Dataset:
        kind = "json" if path.suffix == ".jsonl" else "parquet"
        return datasets.load_dataset(kind, data_files=str(path), cache_dir=str(tmp_path / "cache"))["train"]

    for suffix in (".parquet", ".jsonl"):
        plain_rl = load_file(export(run_copy, "rl", tmp_path / f"rl{suffix}").path)
        plain_sft = load_file(export(run_copy, "sft", tmp_path / f"sft{suffix}").path)
        for ds in (plain_rl, plain_sft):
            assert not {"trajectory", "reasoning", "weak_attempts", "strong_attempts"} & set(ds.column_names)
        assert "THOUGHT" not in json.dumps(plain_rl.to_list() + plain_sft.to_list())

        rl = load_file(export(run_copy, "rl", tmp_path / f"rl-all{suffix}", include="trajectory,reasoning").path)
        for row in rl:
            e = stored[row["id"]]
            assert json.loads(row["trajectory"]) == e["trajectory"]  # every round, reasoning included
            assert [a["reasoning"] for a in row["strong_attempts"]] == [a["reasoning"] for a in e["strong"]["attempts"]]
            assert [a["answer"] for a in row["weak_attempts"]] == [a["answer"] for a in e["weak"]["attempts"]]
            assert "THOUGHT" not in json.dumps(row["prompt"])  # the prompt is only what the solvers were asked

        traj_only = load_file(export(run_copy, "rl", tmp_path / f"rl-t{suffix}", include="trajectory").path)
        assert "strong_attempts" not in traj_only.column_names
        assert all("THOUGHT" not in row["trajectory"] for row in traj_only)
        assert json.loads(traj_only[0]["trajectory"])[-1]["strong"][0]["answer"]

        sft = load_file(
            export(run_copy, "sft", tmp_path / f"sft-all{suffix}", include=["reasoning", "trajectory"]).path
        )
        for row in sft:
            e = stored[row["id"]]
            best = max(e["strong"]["attempts"], key=lambda a: a["score"])
            assert row["messages"][-1]["content"] == best["answer"] and row["reasoning"] == best["reasoning"]
            assert json.loads(row["trajectory"]) == e["trajectory"]
        sft_r = load_file(export(run_copy, "sft", tmp_path / f"sft-r{suffix}", include="reasoning").path)
        assert "trajectory" not in sft_r.column_names and sft_r["reasoning"] == sft["reasoning"]


def test_exported_files_get_the_users_file_mode_not_a_private_one(run_copy, tmp_path):
    """jsonl/parquet exports were written 0600 (a temporary file's mode) while the hf folder's were 0644:
    a dataset a teammate could not read on a shared disk."""
    import os
    import stat

    old = os.umask(0o022)
    try:
        for fmt, name in (("jsonl", "x.jsonl"), ("parquet", "x.parquet"), ("rl", "rl.parquet"), ("sft", "sft.parquet")):
            res = export(run_copy, fmt, tmp_path / name)
            assert stat.S_IMODE(res.path.stat().st_mode) == 0o644, fmt
        split = export(run_copy, "parquet", tmp_path / "splits", split="train=0.5,test=0.5")
        assert {stat.S_IMODE(p.stat().st_mode) for p in split.path.iterdir()} == {0o644}
        # and the folders themselves: they were 0700 (a temporary folder's mode), their files unreachable
        hf = export(run_copy, "hf", tmp_path / "hf-splits", split="train=0.5,test=0.5")
        for folder in (split.path, hf.path, export(run_copy, "hf", tmp_path / "hf").path):
            assert stat.S_IMODE(folder.stat().st_mode) == 0o755, folder
    finally:
        os.umask(old)


@pytest.mark.parametrize(
    ("spec", "said"),
    [
        ("train=1.5", "the share of 'train' must be in (0, 1], not 1.5"),
        ("train=0", "the share of 'train' must be in (0, 1], not 0"),
        ("train=0.5,train=0.5", "'train' is named twice"),
        ("train", "expected NAME=SHARE"),
        ("train=abc", "expected NAME=SHARE"),
        ("train=0.5,test=0.4", "must sum to 1"),
    ],
)
def test_a_bad_split_says_what_is_wrong_with_it(spec, said):
    from autodata.errors import UserError
    from autodata.export.rows import parse_split

    with pytest.raises(UserError) as err:
        parse_split(spec)
    assert said in str(err.value)
