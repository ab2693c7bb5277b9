"""`autodata report`: one self-contained HTML file whose numbers match the run, rendered in Chromium
offline with every figure present."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from autodata.errors import UserError
from autodata.judging.acceptance import preset
from autodata.report.build import write_report
from autodata.report.figures import RUN_FIGURES, acceptance_mask
from autodata.store.reviews import ReviewLog
from autodata.store.run_store import RunStore

ROOT = Path(__file__).resolve().parents[1]
FIGURE_IDS = [fid for fid, *_ in RUN_FIGURES]


def lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def funnel_table(html: str) -> dict[str, int]:
    table = re.search(r'<table id="funnel-table">(.*?)</table>', html, re.S).group(1)
    return {k: int(v) for k, v in re.findall(r"<td>([^<]+)</td><td class=\"num\">(\d+)</td>", table)}


def test_report_is_one_offline_file_whose_numbers_match_the_run(run_copy, tmp_path):
    examples = lines(run_copy / "examples.jsonl")
    episodes = lines(run_copy / "episodes.jsonl")
    log = ReviewLog(sqlite3.connect(run_copy / "run.db", isolation_level=None))
    log.record(examples[0]["id"], "approve", reviewer="ada")
    log.record(examples[1]["id"], "reject", reviewer="ada", reason="ambiguous")

    path, report = write_report(run_copy, tmp_path / "r.html")
    html = path.read_text()
    assert [f.id for f in report.figures] == FIGURE_IDS
    images = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(images) == len(FIGURE_IDS) == 7
    for data in images:
        png = base64.b64decode(data)
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    # nothing that would need the network or run code
    assert not re.search(r"(src|href)=\"(https?:|//)", html) and "<script" not in html and "<link" not in html

    rounds = [r for e in episodes for r in e["rounds"]]

    def docs_with(ok) -> int:
        return sum(1 for e in episodes if any(ok(r) for r in e["rounds"]))

    def quality(r) -> bool:
        return bool(r["quality"] and r["quality"]["passed"])

    funnel = funnel_table(html)
    assert funnel == {  # a true funnel: every step counts documents, each a subset of the one before
        "documents tried": len(episodes),
        "with a question that passed the quality check": docs_with(quality),
        "with a question that passed the weak solver": docs_with(lambda r: quality(r) and r["strong"] is not None),
        "accepted (an example)": len(examples),
        "approved by a reviewer": 1,
    }
    assert list(funnel.values()) == sorted(funnel.values(), reverse=True)
    rejections = re.search(r'<table id="rejections-table">(.*?)</table>', html, re.S).group(1)
    assert "<code>weak_best_too_high</code>" in rejections and "too easy" in rejections
    headline = dict(re.findall(r"<tr><th>([^<]+)</th><td>([^<]*)</td></tr>", html))
    assert headline["accepted examples"] == str(len(examples))
    assert headline["rounds"] == str(len(rounds))
    assert headline["reviewed"] == f"approved 1, rejected 1, edited 0, unreviewed {len(examples) - 2}"
    summary = json.loads((run_copy / "summary.json").read_text())
    assert headline["model calls behind the documents"] == str(summary["made"]["calls"]) == str(summary["calls"])
    table = re.search(r'<table id="roles">(.*?)</table>', html, re.S).group(1)
    roles = re.findall(r"<tr><td>([a-z_]+)</td><td class=\"num\">(\d+)</td>", table)
    assert {r: int(c) for r, c in roles} == {r: u["calls"] for r, u in summary["usage_by_role"].items()}
    assert "SIMULATED" in html


def test_acceptance_region_follows_the_preset():
    weak = np.array([0.30, 0.70, 0.50, 0.10, 0.30])
    strong = np.array([0.80, 0.95, 0.65, 0.97, 0.60])
    assert acceptance_mask(preset("deployed"), weak, strong).tolist() == [True, False, False, False, True]
    loose = acceptance_mask(preset("deployed", gap_min=0.1, strong_mean_below=1.0), weak, strong)
    assert loose.tolist() == [True, False, True, True, True]
    assert acceptance_mask(preset("verifiable"), weak, strong) is None  # counts correct attempts: no region
    assert acceptance_mask(preset("prose"), weak, strong).tolist() == [True, False, False, True, False]


def test_report_command(sim_run, tmp_path):
    out = tmp_path / "x.html"
    res = subprocess.run(
        [sys.executable, "-m", "autodata", "report", str(sim_run), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert res.returncode == 0, res.stderr
    assert f"wrote {out} (7 figures" in res.stdout and out.stat().st_size > 50_000
    with pytest.raises(UserError, match="not a run directory"):
        write_report(tmp_path / "none")


def test_per_document_usage_adds_up_to_the_run(sim_run):
    """Each document's usage (from the call log) sums to the session's usage by role."""
    summary = json.loads((sim_run / "summary.json").read_text())
    store = RunStore.open_existing(sim_run)
    per_document = store.usage_by_document()
    store.close()
    assert len(per_document) == summary["documents"]["total"]
    totals: dict[str, dict[str, int]] = {}
    for roles in per_document.values():
        for role, u in roles.items():
            row = totals.setdefault(role, {"calls": 0, "input_tokens": 0, "output_tokens": 0})
            for k in row:
                row[k] += u[k]
    expected = {
        role: {k: u[k] for k in ("calls", "input_tokens", "output_tokens")}
        for role, u in summary["usage_by_role"].items()
    }
    assert totals == expected


def test_report_of_a_count_based_preset_draws_no_region_and_says_so(verifiable_run, tmp_path):
    path, report = write_report(verifiable_run, tmp_path / "v.html")
    assert len(report.figures) == 7 and path.read_text().count("data:image/png;base64,") == 7
    assert any("'verifiable' preset has no thresholds on mean scores" in n for n in report.notes)
    headline = dict(report.headline)
    assert headline["acceptance preset"] == "verifiable"
    assert headline["accepted examples"] == str(len(lines(verifiable_run / "examples.jsonl")))


def test_optimize_directory_report_shows_pass_rate_and_lineage(tmp_path, monkeypatch):
    from autodata.config import load_config
    from autodata.meta.optimizer import Optimizer

    monkeypatch.chdir(ROOT)
    out = tmp_path / "opt"
    cfg = load_config(ROOT / "examples" / "optimize.yaml", ["optimize.iterations=3"])
    summary = asyncio.run(Optimizer(cfg, out).run())
    population = lines(out / "population.jsonl")
    path, report = write_report(out)
    html = path.read_text()
    assert path == out / "report.html" and report.kind == "optimize"
    assert [f.id for f in report.figures] == ["pass-rate", "lineage"]
    assert html.count('<img src="data:image/png;base64,') == 2
    table = re.search(r'<table id="lineage-table">(.*?)</table>', html, re.S).group(1)
    assert table.count("<tr><td") == len(population) == 4
    headline = dict(report.headline)
    assert headline["iterations"] == "3"
    assert headline["best, validation"] == f"{100 * summary['best']['val_pass_rate']:.1f}%"
    assert headline["starting recipe, test"] == f"{100 * summary['baseline']['test_pass_rate']:.1f}%"
    assert headline["children kept"] == str(sum(1 for c in population[1:] if c["accepted"]))
