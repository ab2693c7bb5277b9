"""Config and input edges: each is exit 2 with a message naming the problem, no traceback and nothing
written, or (a bad document) a skip or a repair with its reason; never a hang, never a crash."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
QUICK = (ROOT / "examples" / "quickstart.yaml").read_text()
PAPER = (ROOT / "examples" / "corpus" / "papers" / "arxiv-2212.11770.md").read_text()


def autodata(*args: str, cwd: Path = ROOT, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "autodata", *args], capture_output=True, text=True, timeout=timeout, cwd=cwd
    )


def refused(res: subprocess.CompletedProcess, *words: str) -> None:
    assert res.returncode == 2, (res.stdout, res.stderr)
    assert "Traceback" not in res.stderr + res.stdout
    for w in words:
        assert w in res.stderr, res.stderr


def config_for(tmp_path: Path, corpus: Path) -> Path:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(QUICK.replace("paths: [examples/corpus/papers]", f"paths: ['{corpus}']"))
    return cfg


@pytest.mark.parametrize("command", ["run", "validate"])
def test_a_config_that_is_not_utf8(tmp_path, command):
    cfg = tmp_path / "latin1.yaml"
    cfg.write_bytes(QUICK.replace("# The quick start", "# Caf\xe9 quick start").encode("latin-1"))
    out = tmp_path / "out"
    res = autodata(command, str(cfg), *(["--out", str(out)] if command == "run" else []))
    refused(res, "not UTF-8", "0xe9", "save the config as UTF-8")
    assert not out.exists()


@pytest.mark.parametrize("command", ["run", "validate"])
def test_a_directory_given_as_the_config(tmp_path, command):
    out = tmp_path / "out"
    res = autodata(command, str(tmp_path), *(["--out", str(out)] if command == "run" else []))
    refused(res, "is a directory")
    assert not out.exists()


def test_an_empty_corpus_folder(tmp_path):
    corpus = tmp_path / "empty"
    corpus.mkdir()
    out = tmp_path / "out"
    refused(autodata("run", str(config_for(tmp_path, corpus)), "--out", str(out)), "holds no files")
    (corpus / "notes.docx").write_bytes(b"PK")
    refused(autodata("run", str(config_for(tmp_path, corpus)), "--out", str(out)), "1 files, none of a supported")
    assert not out.exists()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_a_named_pipe_in_the_corpus_is_skipped_not_read(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "paper.md").write_text(PAPER)
    os.mkfifo(corpus / "pipe.txt")  # reading it would wait for a writer forever
    out = tmp_path / "out"
    res = autodata("run", str(config_for(tmp_path, corpus)), "--out", str(out), "-q", timeout=120)
    assert res.returncode == 0, res.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["documents"]["skipped"] == {"not_a_regular_file": 1}
    assert summary["skipped"][0]["detail"].startswith("a named pipe")
    assert summary["documents"]["accepted"] + summary["documents"]["exhausted"] == 1


def test_a_document_with_a_lone_surrogate_is_cleaned_with_its_reason(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    rows = [
        {"title": "half an emoji \ud83d", "text": PAPER[:4000] + " \ud83d and more"},
        {"title": "clean", "text": PAPER[4000:9000]},
    ]
    # json.dumps writes the lone surrogate as the escape "\ud83d", as exporters of broken text do
    (corpus / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out"
    res = autodata("run", str(config_for(tmp_path, corpus)), "--out", str(out), "-q", timeout=120)
    assert res.returncode == 0, res.stderr
    episodes = [json.loads(x) for x in (out / "episodes.jsonl").read_text().splitlines()]
    assert len(episodes) == 2
    first = next(ep for ep in episodes if ep["source"].endswith(":1"))
    assert first["cleaned"] == "1 lone UTF-16 surrogate(s) replaced by U+FFFD"
    assert first["title"] == "half an emoji \ufffd"


# ------------------------------------------------------------------------------------------ plain validate


@pytest.mark.parametrize(
    ("override", "words"),
    [
        ("loop.acceptance.overrides.strong_mean_min=2.0", "strong_mean_min: 2.0 is outside [0, 1]"),
        ("loop.acceptance.overrides.gap_min=-0.1", "gap_min: -0.1 is outside [0, 1]"),
        ("loop.acceptance.overrides.strong_mean_min=0.96", "is not below strong_mean_below 0.95"),
        ("loop.acceptance.overrides.gap_min=0.98", "gap_min: 0.98 is larger than any strong mean allowed"),
        ("loop.min_valid_attempts=4", "loop.min_valid_attempts: 4 is more than the attempts drawn"),
        ("loop.orchestrator=agent", "roles.orchestrator: required"),
    ],
)
def test_validate_finds_what_run_would_refuse_or_run_for_nothing(override, words):
    from autodata.config import load_config
    from autodata.loop.run import config_problems

    problems = config_problems(load_config(ROOT / "examples" / "quickstart.yaml", [override]))
    assert any(words in p for p in problems), problems


def test_verifiable_thresholds_are_checked_against_k():
    from autodata.config import load_config
    from autodata.loop.run import config_problems

    cfg = load_config(ROOT / "examples" / "verifiable.yaml", ["loop.acceptance.overrides.strong_correct_min=5"])
    assert any("5 correct strong attempts cannot happen in k_strong = 4" in p for p in config_problems(cfg))


def test_every_example_config_validates():
    from autodata.config import load_config
    from autodata.loop.run import config_problems

    for path in sorted((ROOT / "examples").glob("*.yaml")):
        assert config_problems(load_config(path)) == [], path


def test_validate_and_run_refuse_an_impossible_threshold_before_any_call(tmp_path):
    bad = "loop.acceptance.overrides.strong_mean_min=2.0"
    refused(autodata("validate", "examples/quickstart.yaml", "--set", bad), "strong_mean_min: 2.0 is outside [0, 1]")
    out = tmp_path / "out"
    refused(autodata("run", "examples/quickstart.yaml", "--out", str(out), "--set", bad), "outside [0, 1]")
    assert not out.exists()
