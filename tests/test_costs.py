"""What examples cost to make versus what a session paid; run progress totals; rejection glossary.

A run answered entirely from the call cache pays nothing, but its examples cost as much to make as
those of the run that first paid for the answers: status, report and compare show that cost (cached
answers valued at their endpoint's price, from the call log) apart from what was paid."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PRICES = [
    "--set", "models.weak.price.input_per_mtok=1", "--set", "models.strong.price.output_per_mtok=10",
    "--set", "models.judge.price.input_per_mtok=2", "--set", "models.challenger.price.output_per_mtok=5",
]  # fmt: skip


def cli(*args: str, cache: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, **({"AUTODATA_CACHE_DIR": str(cache)} if cache else {}), "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "autodata", *args], capture_output=True, text=True, timeout=180, cwd=ROOT, env=env
    )


@pytest.fixture(scope="module")
def paid_and_cached(tmp_path_factory):
    base = tmp_path_factory.mktemp("costs")
    for name in ("paid", "cached"):  # the second run, same cache: every answer from the cache
        res = cli("run", "examples/quickstart.yaml", "--out", str(base / name), "--limit", "4", "-q", *PRICES,
                  cache=base / "cache")  # fmt: skip
        assert res.returncode == 0, res.stderr
    return base / "paid", base / "cached"


def summary(run: Path) -> dict:
    return json.loads((run / "summary.json").read_text())


def test_a_run_from_the_cache_costs_the_same_to_make_and_nothing_to_pay(paid_and_cached, tmp_path):
    paid, cached = map(summary, paid_and_cached)
    assert cached["calls"] == 0 and cached["cost_usd"] == 0 and cached["this_session"]["calls"] == 0
    assert cached["cache_hits"] == paid["calls"] > 0
    assert paid["made"]["cost_usd"] > 0 and paid["made"]["cost_usd"] == pytest.approx(paid["cost_usd"])
    for key in ("calls", "input_tokens", "output_tokens"):
        assert cached["made"][key] == paid["made"][key] > 0
    assert cached["made"]["cost_usd"] == pytest.approx(paid["made"]["cost_usd"])
    assert cached["made"]["cache_hits"] == cached["made"]["calls"] and paid["made"]["cache_hits"] == 0
    assert cached["made_per_accepted_example"] == paid["made_per_accepted_example"]

    # status prints both: what the examples cost to make, and what was paid
    paid_status, cached_status = (cli("status", str(r)).stdout for r in paid_and_cached)
    cost = f"{paid['made']['cost_usd']:.4f}"
    for text in (paid_status, cached_status):
        assert re.search(rf"cost to make them \(USD\)\s+│\s+{cost}", text)
    assert re.search(r"paid in all sessions \(USD\)\s+│\s+0\.0000", cached_status)
    assert re.search(
        rf"model calls behind these documents\s+│\s+{paid['calls']} \({paid['calls']} answered", cached_status
    )

    # the report's headline and its tokens per role
    from autodata.report.build import run_report

    for run in paid_and_cached:
        headline = dict(run_report(run).headline)
        assert headline["cost to make (cached answers at their price)"] == f"${paid['made']['cost_usd']:.4f}"
        assert headline["model calls behind the documents"] == str(paid["made"]["calls"])
    from autodata.report.data import load_run

    def tokens(run: Path) -> dict:
        return {r: (u["input_tokens"], u["output_tokens"]) for r, u in load_run(run).usage_by_role.items()}

    assert tokens(paid_and_cached[1]) == tokens(paid_and_cached[0]) != {}  # the chart of a cached run

    # compare's cost per example (Table 1) is the same for both
    from autodata.analysis import compare as cmp
    from autodata.analysis.runs import load_run as load_for_compare

    rows = cmp.compare([load_for_compare(r) for r in paid_and_cached], resamples=200)["rows"]
    assert rows[0]["cost_per_example_usd"] == pytest.approx(rows[1]["cost_per_example_usd"])
    assert rows[1]["cost_per_example_usd"] > 0
    assert rows[0]["calls_per_example"] == rows[1]["calls_per_example"] > 0
    assert rows[1]["paid_usd"] == 0


def test_made_counts_each_document_once_across_sessions(paid_and_cached, tmp_path):
    """A resumed run (a second session over the same directory) does not count a document twice."""
    import shutil

    run = tmp_path / "run"
    shutil.copytree(paid_and_cached[0], run)
    before = summary(run)["made"]
    res = cli("run", "examples/quickstart.yaml", "--out", str(run), "--limit", "5", "-q", *PRICES,
              cache=tmp_path / "cold")  # fmt: skip
    assert res.returncode == 0, res.stderr
    after = summary(run)
    assert after["sessions"] == 2 and after["documents"]["total"] == 5
    assert before["calls"] < after["made"]["calls"] < before["calls"] + after["this_session"]["calls"] + 1
    assert after["made"]["calls"] - before["calls"] == after["this_session"]["calls"]


def test_the_progress_bar_has_a_total_from_a_cheap_count(tmp_path):
    from autodata.config import DocumentsConfig
    from autodata.documents.sources import count_inputs

    corpus = tmp_path / "c"
    corpus.mkdir()
    (corpus / "a.md").write_text("# A\n" + "text " * 100)
    (corpus / "rows.jsonl").write_text('{"text": "x"}\n\n{"text": "y"}\n{"text": "z"}\n')
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"text": ["p"] * 7}), corpus / "t.parquet")
    assert count_inputs(DocumentsConfig(paths=[str(corpus)])) == 1 + 3 + 7
    assert count_inputs(DocumentsConfig(paths=["hf://someone/data"])) is None  # streamed: not known cheaply
    n = len(list((ROOT / "examples/corpus/papers").glob("*")))
    res = subprocess.run(
        ["script", "-qc", f"{sys.executable} -m autodata run examples/quickstart.yaml --out {tmp_path / 'r'} --limit 3",
         "/dev/null"],
        capture_output=True, text=True, timeout=180, cwd=ROOT,
        env={**os.environ, "COLUMNS": "200", "AUTODATA_CACHE_DIR": str(tmp_path / "cache")},
    )  # fmt: skip
    if res.returncode == 127 or "not found" in res.stderr:
        pytest.skip("no `script` (util-linux) to give the bar a terminal")
    text = re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", res.stdout.replace("\r", "\n"))
    assert re.search(r"\b3/3\s+100%", text), text[-2000:]
    assert "/?" not in text and "eta" in text and n > 3


def test_every_rejection_code_has_plain_words_and_the_readme_glossary_matches():
    from autodata.glossary import REJECTIONS, glossary_markdown, rejection_words
    from autodata.judging.acceptance import REASONS

    assert set(REASONS) == set(REJECTIONS)
    assert rejection_words("error:challenger").startswith("the challenger")
    assert rejection_words("error:judge") == "a call of the judge failed for good in this round"
    assert rejection_words("mystery") == "mystery"
    assert glossary_markdown() in (ROOT / "README.md").read_text()
