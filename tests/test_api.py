"""The Python API for notebooks: config in, documents in (texts, dicts, a datasets.Dataset), Dataset out."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import datasets
import pytest

import autodata
from autodata.errors import ConfigError, UserError

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = ROOT / "examples/quickstart.yaml"


@pytest.fixture(autouse=True)
def _offline_datasets(monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    datasets.disable_progress_bars()


@pytest.fixture(scope="module")
def papers() -> list[dict[str, str]]:
    paths = sorted((ROOT / "examples/corpus/papers").glob("*.md"))[:3]
    return [{"text": p.read_text(encoding="utf-8"), "title": p.stem} for p in paths]


def test_load_config_from_a_path_a_dict_and_overrides():
    cfg = autodata.load_config(QUICKSTART, ["loop.k_weak=2"])
    assert cfg.loop.k_weak == 2
    again = autodata.load_config(cfg.model_dump(mode="json"), ["seed=7"])
    assert again.seed == 7 and again.loop.k_weak == 2
    with pytest.raises(ConfigError) as err:
        autodata.load_config({**cfg.model_dump(mode="json"), "loop": {"k_wek": 2}})
    assert any("loop.k_wek" in d for d in err.value.details)  # the bad key is named


def test_generate_from_dicts_keeps_a_resumable_run_and_matches_the_export(papers, tmp_path):
    out = tmp_path / "nb"
    ds = autodata.generate(QUICKSTART, papers[:2], out=out)
    assert isinstance(ds, datasets.Dataset)
    stored = [json.loads(x) for x in (out / "examples.jsonl").read_text().splitlines()]
    assert ds.num_rows == len(stored) >= 1
    assert ds["id"] == [e["id"] for e in stored] and ds["question"] == [e["question"] for e in stored]
    assert set(ds["document_title"]) <= {p["title"] for p in papers}
    from autodata.export.write import export

    exported = datasets.Dataset.from_parquet(str(export(out, "parquet", tmp_path / "x.parquet").path))
    assert ds.features == exported.features  # the same columns and types as the parquet export
    rl = autodata.load_examples(out, layout="rl")
    assert rl.num_rows == ds.num_rows and rl[0]["reward_model"]["ground_truth"] == stored[0]["reference_answer"]
    with pytest.raises(UserError, match="layout"):
        autodata.load_examples(out, layout="chat")


def test_generate_from_texts_and_a_dataset_without_a_run_dir(papers, tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    texts = autodata.generate(QUICKSTART, [p["text"] for p in papers[:1]])  # titled "document 1"
    assert set(texts["document_title"]) <= {"document 1"}
    as_dicts = autodata.generate(QUICKSTART, papers[:1])
    from_dataset = autodata.generate(QUICKSTART, datasets.Dataset.from_list(papers[:1]))
    assert from_dataset.num_rows == as_dicts.num_rows
    assert from_dataset["question"] == as_dicts["question"]  # the same document, the same (cached) calls
    assert list((tmp_path / "tmp").iterdir()) == []  # the temporary run is gone
    assert from_dataset.to_pandas().shape[0] == from_dataset.num_rows  # still readable: rows are in memory
    with pytest.raises(UserError, match=r"documents\.text_field"):
        autodata.generate(QUICKSTART, [{"body": "no text field"}])


def test_preview_shows_each_round_of_a_few_documents(papers, tmp_path):
    rounds = autodata.preview(QUICKSTART, papers, n=2)
    assert len(set(rounds["document_id"])) == 2  # n documents, not all three
    assert rounds.num_rows >= 2 and all(q for q in rounds["question"])
    rejected = [r for r in rounds if not r["accepted"]]
    assert all(r["reasons"] or r["error"] for r in rejected)  # a rejected round says why
    assert all(isinstance(x, str) and not x.startswith("{") for r in rejected for x in r["reasons"])
    with pytest.raises(UserError, match="n must be"):
        autodata.preview(QUICKSTART, papers, n=0)


def test_the_api_works_inside_a_running_event_loop(papers):
    """Jupyter runs cells inside an event loop; asyncio.run there would fail."""

    async def cell() -> datasets.Dataset:
        return autodata.preview(QUICKSTART, papers[:1], n=1)

    assert asyncio.run(cell()).num_rows >= 1
