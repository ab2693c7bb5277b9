"""Issue 15, "the same column types in every format": a column that is null (or a list empty) in every row
of one export still loads as its declared type, in every format, and concatenates with an export where
it has values.

What the readers do (measured with the installed ``datasets`` and ``pyarrow``, and reported upstream):

- pyarrow's JSON reader, and so ``datasets.load_dataset("json", ...)``, types a column that is null in
  every row, or a list empty in every row, as the null type; a folder whose files disagree then fails to
  load ("Couldn't cast array of type double to null": huggingface/datasets#7092, #7222).
- ``datasets.load_dataset(FOLDER)`` reads the YAML header of the folder's README.md (the dataset card):
  ``dataset_info.features`` become the builder's features, which the JSON and Parquet builders cast every
  file to, and ``configs[].data_files`` name each split's files
  (https://huggingface.co/docs/hub/datasets-cards, https://huggingface.co/docs/hub/datasets-manual-configuration).
  ``load_dataset("json", data_files=...)`` reads no card: a lone JSONL file needs ``features=``.

The runs are the simulated ladder's (``sim_run``); a reviewer's edits and a store rewritten to the sparse
form other profiles and older rows have make the columns null or empty.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import datasets
import pyarrow as pa
import pyarrow.json as pj
import pytest
import yaml
from datasets.info import DatasetInfosDict
from huggingface_hub import DatasetCard

from autodata.export.write import export, features
from autodata.store.reviews import ReviewLog


@pytest.fixture(autouse=True)
def _offline_datasets(monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    datasets.disable_progress_bars()


def lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def card_yaml(folder: Path) -> dict:
    return yaml.safe_load((folder / "README.md").read_text().split("---")[1])


def null_paths(t: pa.DataType, path: str) -> list[str]:
    """Where an Arrow type holds the null type, spelt as ``rows.untyped_in_json`` spells it."""
    if pa.types.is_null(t):
        return [path]
    if pa.types.is_struct(t):
        return [p for f in t for p in null_paths(f.type, f"{path}.{f.name}")]
    if pa.types.is_list(t):
        return null_paths(t.value_type, f"{path}[]")
    return []


def edit_every_question(run_dir: Path) -> None:
    """A reviewer rewrites every question: no solver answered the new ones, so every sft row imitates
    the reference answer, which nobody scored (``score`` null)."""
    log = ReviewLog(sqlite3.connect(run_dir / "run.db", isolation_level=None))
    for e in lines(run_dir / "examples.jsonl"):
        log.record(e["id"], "edit", reviewer="ada", payload={"question": f"Reworded: {e['question']}"})


# every field of a stored example that can be null or empty, in that form: a challenger may name no
# reasoning skill, and an example file from elsewhere (``autodata dedup`` reads one; ``Example`` gives
# its defaults) has no rubric, title, type, time, models or side statistics
SPARSE = {
    "rubric": [],
    "reasoning_skills": [],
    "document_title": None,
    "question_type": None,
    "created_at": None,
    "gap": None,
    "models": {},
}


def make_sparse(run_dir: Path, ids: set[str] | None = None) -> None:
    con = sqlite3.connect(run_dir / "run.db")
    with con:
        for eid, data in con.execute("SELECT id, data FROM examples").fetchall():
            if ids is not None and eid not in ids:
                continue
            row = json.loads(data) | SPARSE
            for side in ("weak", "strong"):
                row[side] = row[side] | {"mean": None, "max": None}
            con.execute("UPDATE examples SET data = ? WHERE id = ?", (json.dumps(row), eid))
    con.close()


def test_an_sft_export_of_reference_answers_only_loads_score_as_float_and_concatenates(sim_run, run_copy, tmp_path):
    """The issue's case: every sft row's answer is the reference answer (a reviewer edited every question),
    so ``score`` is null in every row. Parquet holds float64; the folder's card declares it; a lone JSONL
    file is read as null by plain ``load_dataset("json")`` (the export says so and names the column), and
    as float64 with ``features=features("sft")``. Each concatenates with an sft export that has scores."""
    edit_every_question(run_copy)
    cache = str(tmp_path / "cache")
    scored = datasets.load_dataset("parquet", data_files=str(export(sim_run, "sft", tmp_path / "s.parquet").path),
                                   cache_dir=cache)["train"]  # fmt: skip
    assert scored.features["score"] == datasets.Value("float64") and None not in scored["score"]

    res = export(run_copy, "sft", tmp_path / "ref.jsonl")
    rows = lines(res.path)
    assert rows and {r["answer_source"] for r in rows} == {"reference_answer"} and {r["score"] for r in rows} == {None}
    assert res.untyped == ["score"] and "score" in res.message() and "features('sft')" in res.message()
    plain = datasets.load_dataset("json", data_files=str(res.path), cache_dir=cache)["train"]
    assert plain.features["score"] == datasets.Value("null")  # what the reader does without the types
    typed = datasets.load_dataset("json", data_files=str(res.path), features=features("sft"), cache_dir=cache)
    loaded = {
        "jsonl": typed["train"],
        "parquet": datasets.load_dataset(
            "parquet", data_files=str(export(run_copy, "sft", tmp_path / "ref.parquet").path), cache_dir=cache
        )["train"],
        "folder": datasets.load_dataset(
            str(export(run_copy, "sft", tmp_path / "ref-folder", split="train=1").path), cache_dir=cache
        )["train"],
    }
    for how, ds in loaded.items():
        assert ds.features == scored.features == features("sft"), how
        assert list(ds["score"]) == [None] * len(rows), how
        both = datasets.concatenate_datasets([ds, scored])
        assert both.features["score"] == datasets.Value("float64")
        assert list(both["score"]) == [None] * len(rows) + list(scored["score"])


@pytest.mark.parametrize("columns", [(), ("trajectory", "reasoning")])
def test_every_format_loads_the_declared_types_when_every_nullable_column_is_empty(
    sim_run, run_copy, columns, tmp_path
):
    """Every column a run can leave null or empty, null or empty in every row (``SPARSE``, and ``score``
    by edited questions), in every format and layout: Parquet files and ``datasets`` folders hold the
    declared types, folders of JSONL (or Parquet) files load them from their card, a lone JSONL file loads
    them with ``features=``; the columns the export names as untyped are exactly those pyarrow's JSON
    reader types null; and each export concatenates with the same format's export of an unchanged run."""
    edit_every_question(run_copy)
    make_sparse(run_copy)
    include = ["auto", *columns]
    cache = str(tmp_path / "cache")

    def load(path: Path, layout: str) -> datasets.Dataset:
        if path.is_dir():
            if (path / "dataset_info.json").exists() or (path / "dataset_dict.json").exists():
                ds = datasets.load_from_disk(str(path))
            else:
                ds = datasets.load_dataset(str(path), cache_dir=cache)
            return ds["train"] if isinstance(ds, datasets.DatasetDict) else ds
        kind = "json" if path.suffix == ".jsonl" else "parquet"
        given = features(layout, columns) if kind == "json" else None
        return datasets.load_dataset(kind, data_files=str(path), features=given, cache_dir=cache)["train"]

    checked_untyped = set()
    for fmt, outs in (
        ("jsonl", ["x.jsonl", "x-folder"]),
        ("parquet", ["x.parquet", "x-folder"]),
        ("hf", ["x-hf", "x-hf-splits"]),
        ("rl", ["x.jsonl", "x.parquet", "x-folder"]),
        ("sft", ["x.jsonl", "x.parquet", "x-folder"]),
    ):
        declared = features(fmt, columns)
        for name in outs:
            split = "train=1" if name.endswith(("folder", "splits")) else None
            sparse = export(run_copy, fmt, tmp_path / "sparse" / fmt / name, include=include, split=split)
            full = export(sim_run, fmt, tmp_path / "full" / fmt / name, include=include, split=split)
            assert sparse.rows == full.rows > 0
            got, ref = load(sparse.path, fmt), load(full.path, fmt)
            assert got.features == ref.features == declared, (fmt, name)
            both = datasets.concatenate_datasets([got, ref])
            assert both.features == declared and both.num_rows == 2 * sparse.rows
            if sparse.path.suffix == ".jsonl":
                inferred = pj.read_json(sparse.path).schema
                assert sorted(sparse.untyped) == sorted(p for f in inferred for p in null_paths(f.type, f.name))
                checked_untyped.update(sparse.untyped)
                assert not full.untyped  # the unchanged run has a value of every column somewhere
            else:
                assert sparse.untyped == []  # Parquet holds its types; a folder has its card
            if sparse.path.is_dir():
                meta = card_yaml(sparse.path)
                # datasets' own reading of the card: the features load_dataset(FOLDER) builds with
                info = DatasetInfosDict.from_dataset_card_data(DatasetCard.load(sparse.path / "README.md").data)
                assert info["default"].features == declared
                assert meta["dataset_info"]["splits"][0] == {
                    "name": "train", "num_bytes": meta["dataset_info"]["splits"][0]["num_bytes"],
                    "num_examples": sparse.rows,
                }  # fmt: skip
    # the sparse columns JSON cannot type, named by the export (one layout each is enough to list here)
    assert {"score", "rubric[]", "reasoning_skills[]", "created_at", "gap", "models[]"} <= checked_untyped
    assert {"extra_info.rubric[]", "weak_mean", "original_rubric[]"} <= checked_untyped


def test_a_folder_whose_splits_disagree_loads_with_the_cards_types(sim_run, run_copy, tmp_path):
    """One split's columns null or empty in every row, the other's with values: the JSONL files of the
    folder disagree (the case of huggingface/datasets#7092, where the first file's null types fail the
    cast of the next). ``load_dataset(FOLDER)`` takes the card's features and loads both splits typed,
    including a split name datasets would not infer from a file name."""
    spec = "held=0.5,rest=0.5"
    first = export(sim_run, "jsonl", tmp_path / "probe", split=spec)
    held = {r["id"] for r in lines(first.path / "held.jsonl")}
    assert held and len(held) < first.rows
    make_sparse(run_copy, held)
    res = export(run_copy, "jsonl", tmp_path / "mixed", split=spec)
    assert res.splits == first.splits
    assert pj.read_json(res.path / "held.jsonl").schema.field("created_at").type == pa.null()
    assert pj.read_json(res.path / "rest.jsonl").schema.field("created_at").type == pa.string()
    meta = card_yaml(res.path)
    assert meta["configs"] == [
        {"config_name": "default", "data_files": [{"split": "held", "path": "held.jsonl"},
                                                  {"split": "rest", "path": "rest.jsonl"}]}
    ]  # fmt: skip
    ds = datasets.load_dataset(str(res.path), cache_dir=str(tmp_path / "cache"))
    assert {s: d.num_rows for s, d in ds.items()} == res.splits
    for d in ds.values():
        assert d.features == features("jsonl")
    assert set(ds["held"]["created_at"]) == {None} and None not in ds["rest"]["created_at"]


def test_the_pushed_card_names_the_hubs_files(run_copy, tmp_path, monkeypatch):
    """``push_to_hub`` stores each split as ``data/<split>-NNNNN-of-NNNNN.parquet``; the card uploaded
    over its README declares the same features and names those files (a local ``datasets`` folder is
    read by ``load_from_disk``, so its own card names none)."""
    import huggingface_hub

    pushed: list[str] = []
    monkeypatch.setattr(datasets.DatasetDict, "push_to_hub", lambda self, repo, **kw: None)
    monkeypatch.setattr(datasets.Dataset, "push_to_hub", lambda self, repo, **kw: None)
    monkeypatch.setattr(huggingface_hub.DatasetCard, "push_to_hub", lambda self, repo, **kw: pushed.append(str(self)))
    res = export(run_copy, "hf", tmp_path / "hf", split="train=0.5,test=0.5", push_to_hub="me/data")
    meta = yaml.safe_load(pushed[0].split("---")[1])
    assert meta["configs"][0]["data_files"] == [
        {"split": "train", "path": "data/train-*"},
        {"split": "test", "path": "data/test-*"},
    ]
    assert "configs" not in card_yaml(res.path)
    assert meta["dataset_info"] == card_yaml(res.path)["dataset_info"]
    assert [s["name"] for s in meta["dataset_info"]["splits"]] == ["train", "test"]


def test_the_command_says_which_columns_a_json_reader_cannot_type_and_how_to_load_them(run_copy, tmp_path):
    """``autodata export`` of a lone JSONL file prints the untyped columns and the two ways to get the types;
    following the second (``--split train=1``) gives a folder that loads ``score`` as float64."""
    edit_every_question(run_copy)

    def cli(*args: str) -> str:
        res = subprocess.run([sys.executable, "-m", "autodata", "export", str(run_copy), *args],
                             capture_output=True, text=True, timeout=120)  # fmt: skip
        assert res.returncode == 0, res.stderr
        return " ".join(res.stdout.split())

    said = cli("--format", "sft", "--out", str(tmp_path / "sft.jsonl"))
    assert "null or empty in every row, so a JSON reader types them null: score;" in said
    assert "features=autodata.export.write.features('sft')" in said and "--split train=1" in said
    said = cli("--format", "sft", "--out", str(tmp_path / "sft"), "--split", "train=1")
    assert "JSON reader" not in said
    ds = datasets.load_dataset(str(tmp_path / "sft"), cache_dir=str(tmp_path / "cache"))["train"]
    assert ds.features["score"] == datasets.Value("float64") and set(ds["score"]) == {None}


def test_a_code_export_where_no_strong_attempt_passed_every_test_keeps_score_float():
    """The code profile imitates only a solution that passed every test, else the reference solution, whose
    ``score`` is null: such rows alone still have the declared float64 column, the same table type as
    rows with scores (Arrow concatenates them without promotion), and the column is named as untyped."""
    from autodata.export.rows import table, untyped_in_json
    from test_code_profile import record

    partial = table("sft", [record(0.6), record(0.6)])
    assert partial["answer_source"].to_pylist() == ["reference_answer"] * 2
    assert partial.schema.field("score").type == pa.float64() and untyped_in_json(partial) == ["score"]
    passed = table("sft", [record()])
    assert untyped_in_json(passed) == []
    assert pa.concat_tables([partial, passed])["score"].to_pylist() == [None, None, 1.0]


@pytest.mark.parametrize("fmt", ["jsonl", "parquet", "rl", "sft", "hf"])
def test_a_split_without_rows_does_not_stop_the_others_loading(sim_run, tmp_path, fmt):
    """More splits than documents leave a split empty; datasets refuses to build a split of 0 examples
    ('Instruction "s9" corresponds to no data!'; load_from_disk: IndexError), and the whole folder failed
    to load. The empty split is left out of the card (and of the hf folder); the others load."""
    spec = ",".join(f"s{i}=0.1" for i in range(10))
    res = export(sim_run, fmt, tmp_path / "out", split=spec)
    empty = {s for s, n in res.splits.items() if n == 0}
    assert empty and sum(res.splits.values()) == res.rows
    meta = card_yaml(res.path)
    assert {s["name"] for s in meta["dataset_info"]["splits"]} == set(res.splits) - empty
    if fmt == "hf":
        ds = datasets.load_from_disk(str(res.path))
    else:
        assert [f["split"] for f in meta["configs"][0]["data_files"]] == [s for s in res.splits if s not in empty]
        ds = datasets.load_dataset(str(res.path), cache_dir=str(tmp_path / "cache"))
    assert {s: d.num_rows for s, d in ds.items()} == {s: n for s, n in res.splits.items() if n}
