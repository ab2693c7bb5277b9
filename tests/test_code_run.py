"""`examples/code.yaml` end to end on the simulated ladder: real code runs in the sandbox, the run
resumes after kill -9, and its examples appear in review, report and export."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from autodata.sandbox import make_executor

ROOT = Path(__file__).resolve().parents[1]
KIND = "bwrap" if shutil.which("bwrap") else "subprocess"  # CI installs bwrap (.ci/run)
SANDBOX = ["--set", f"sandbox.kind={KIND}"]
pytestmark = pytest.mark.timeout(600)


def autodata(*args: str, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "autodata", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


def lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


TIMING = {"seconds", "cpu_seconds", "created_at"}


def untimed(value):
    """A stored record without the fields that measure time (they differ between any two runs)."""
    if isinstance(value, dict):
        return {k: untimed(v) for k, v in value.items() if k not in TIMING}
    if isinstance(value, list):
        return [untimed(v) for v in value]
    return value


@pytest.fixture(scope="module")
def code_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("code") / "run"
    env = {**os.environ, "AUTODATA_CACHE_DIR": str(out.parent / "cache")}
    res = autodata("run", "examples/code.yaml", "--out", str(out), "--limit", "4", "-q", *SANDBOX, env=env)
    assert res.returncode == 0, res.stderr
    return out


def test_accepted_examples_hold_a_sound_task_and_runnable_evidence(code_run: Path):
    summary = json.loads((code_run / "summary.json").read_text())
    assert summary["documents"]["accepted"] >= 1
    sb = summary["sandbox"]
    assert sb["kind"] == KIND and sb["runs"] > 0 and sb["seconds"] > 0
    assert ("warning" in sb) == (KIND == "subprocess")
    ex = make_executor(KIND)
    for e in lines(code_run / "examples.jsonl"):
        assert e["profile"] == "code" and e["code"]["entry_point"] in e["question"]
        assert "def test_" not in e["context"]  # the tests stay hidden from solvers
        assert ex.run(e["reference_answer"], e["code"]["tests"]).all_passed
        weak = [a["score"] for a in e["weak"]["attempts"]]
        strong = [a["score"] for a in e["strong"]["attempts"]]
        assert sum(weak) / len(weak) <= 0.5 and max(weak) < 1.0 and sum(strong) / len(strong) >= 0.8
    rounds = [r for ep in lines(code_run / "episodes.jsonl") for r in ep["rounds"]]
    attempts = [a for r in rounds for a in r["weak"] + (r["strong"] or [])]
    assert all(a.get("details") or a.get("error") for a in attempts)
    assert all(a["error"].startswith("scorer: no Python code") for a in attempts if a.get("error"))
    checked = [r for r in rounds if (r.get("quality") or {}).get("measured")]
    assert checked and all("reference" in r["quality"]["measured"]["runs"] for r in checked)


def test_the_run_appears_in_review_report_and_export(code_run: Path, tmp_path: Path):
    env = dict(os.environ)
    res = autodata("export", str(code_run), "--format", "rl", "--out", str(tmp_path / "rl.jsonl"), env=env)
    assert res.returncode == 0, res.stderr
    rows = lines(tmp_path / "rl.jsonl")
    assert rows and all(r["reward_model"]["style"] == "rule" for r in rows)
    assert all("def test_" in r["reward_model"]["ground_truth"] for r in rows)
    res = autodata("export", str(code_run), "--format", "sft", "--out", str(tmp_path / "sft.jsonl"), env=env)
    assert res.returncode == 0, res.stderr
    sft = lines(tmp_path / "sft.jsonl")
    assert sft and all("```python" in r["messages"][-1]["content"] for r in sft)
    res = autodata("report", str(code_run), "--out", str(tmp_path / "r.html"), env=env)
    assert res.returncode == 0, res.stderr
    html = (tmp_path / "r.html").read_text()
    assert "sandbox seconds per accepted example" in html
    assert ("generated code ran WITHOUT filesystem or network isolation" in html) == (KIND == "subprocess")

    from fastapi.testclient import TestClient

    from autodata.review.app import ReviewSettings, create_app
    from autodata.store.run_store import RunStore

    store = RunStore.open_existing(code_run)
    try:
        client = TestClient(create_app(store, ReviewSettings(reviewer="t", token=None, allowed_hosts=("testserver",))))
        page = client.get("/")
        assert page.status_code == 200
        first = lines(code_run / "examples.jsonl")[0]
        assert first["code"]["entry_point"] in page.text
    finally:
        store.close()


def test_kill_9_mid_run_then_resume_equals_an_uninterrupted_run(tmp_path: Path):
    slow = ["--set", "models.weak.simulation.latency_ms=40", "--set", "loop.concurrency=2", *SANDBOX]
    env = {**os.environ, "AUTODATA_CACHE_DIR": str(tmp_path / "cache-a")}
    out = tmp_path / "killed"
    args = [sys.executable, "-m", "autodata", "run", "examples/code.yaml", "--out", str(out), "--limit", "4", "-q"]
    proc = subprocess.Popen([*args, *slow], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    done = 0
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            db = sqlite3.connect(str(out / "run.db"), timeout=5)
            done = db.execute("SELECT COUNT(*) FROM documents").fetchone()[0]
            db.close()
        except sqlite3.Error:
            done = 0
        if done >= 1:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    assert 1 <= done < 4
    res = subprocess.run([*args, *slow], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    env_b = {**os.environ, "AUTODATA_CACHE_DIR": str(tmp_path / "cache-b")}
    ref = tmp_path / "reference"
    res = autodata("run", "examples/code.yaml", "--out", str(ref), "--limit", "4", "-q", *SANDBOX, env=env_b)
    assert res.returncode == 0, res.stderr
    assert untimed(lines(out / "episodes.jsonl")) == untimed(lines(ref / "episodes.jsonl"))
    killed = json.loads((out / "summary.json").read_text())
    assert killed["sessions"] == 2 and killed["documents"]["total"] == 4
