"""`autodata run` end to end on the simulated ladder: outputs, resume after kill -9, recipe guard."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from autodata.judging.acceptance import decide, preset
from autodata.judging.rubric import score
from conftest import kill_after_documents

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args: str, timeout: float = 180, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "autodata", *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=env
    )


def lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def comparable(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "created_at"} for r in rows]


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    base = tmp_path_factory.mktemp("quick")
    out = base / "run"
    # module-scoped: runs before the per-test cache isolation, so it brings its own cold cache
    env = {**os.environ, "AUTODATA_CACHE_DIR": str(base / "cache")}
    res = run_cli("run", "examples/quickstart.yaml", "--out", str(out), "--limit", "8", "-q", env=env)
    assert res.returncode == 0, res.stderr
    return out, res


def test_outputs_follow_the_contract(quick):
    out, res = quick
    assert "SIMULATED" in res.stderr
    examples = lines(out / "examples.jsonl")
    episodes = lines(out / "episodes.jsonl")
    summary = json.loads((out / "summary.json").read_text())
    assert len(episodes) == 8 and summary["documents"]["total"] == 8
    assert summary["documents"]["accepted"] == len(examples) >= 3
    assert summary["documents"]["accepted"] + summary["documents"]["exhausted"] == 8
    keys = {
        "id",
        "document_id",
        "document_title",
        "profile",
        "question_type",
        "reasoning_skills",
        "context",
        "question",
        "reference_answer",
        "rubric",
        "weak",
        "strong",
        "gap",
        "rounds",
        "trajectory",
        "quality",
        "recipe_hash",
        "models",
        "created_at",
        # the typed example (autodata.example): format version, the solvers' messages as sent, frozen hash
        "version",
        "solver_messages",
        "solver_messages_source",
        "frozen_hash",
    }
    for ex in examples:
        assert set(ex) == keys
        assert ex["version"] == 2 and ex["solver_messages_source"] == "sent"
        assert ex["solver_messages"][0]["role"] == "user" and ex["question"] in ex["solver_messages"][0]["content"]
        assert {"attempts", "mean", "max"} == set(ex["weak"]) == set(ex["strong"])
        assert all(set(c) == {"criterion", "weight", "category"} for c in ex["rubric"])
    assert summary["calls"] > 0 and summary["calls_per_accepted_example"] > 0
    assert summary["usage_by_role"]["weak_solver"]["calls"] > summary["usage_by_role"]["strong_solver"]["calls"]
    assert sum(len(e["rounds"]) for e in episodes) == summary["rounds"]


def test_accepted_examples_pass_the_predicate_recomputed_from_stored_marks(quick):
    out, _ = quick
    p = preset("deployed")
    for ex in lines(out / "examples.jsonl"):
        weights = [c["weight"] for c in ex["rubric"]]
        weak = [score(weights, a["marks"]) for a in ex["weak"]["attempts"]]
        strong = [score(weights, a["marks"]) for a in ex["strong"]["attempts"]]
        assert weak == [a["score"] for a in ex["weak"]["attempts"]]
        assert decide(p, quality_passed=ex["quality"]["passed"], weak=weak, strong=strong).accepted
        assert ex["gap"] == pytest.approx(sum(strong) / len(strong) - sum(weak) / len(weak))


def test_run_db_logs_every_call_under_its_document_with_tokens_and_cost(quick):
    out, _ = quick
    summary = json.loads((out / "summary.json").read_text())
    db = sqlite3.connect(str(out / "run.db"))
    rows = db.execute("SELECT document_id, role, cache_hit, input_tokens, output_tokens FROM calls").fetchall()
    assert len(rows) == summary["calls"] + summary["cache_hits"]
    docs = {r[0] for r in db.execute("SELECT id FROM documents")}
    assert {r[0] for r in rows} == docs  # every call belongs to a finished document, and every document has calls
    for role, usage in summary["usage_by_role"].items():
        logged = [r for r in rows if r[1] == role and not r[2]]
        assert len(logged) == usage["calls"]
        assert (
            sum(r[3] for r in logged) == usage["input_tokens"] and sum(r[4] for r in logged) == usage["output_tokens"]
        )


def test_rerun_of_a_finished_run_makes_zero_calls(quick, tmp_path):
    out, _ = quick
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    res = run_cli("run", "examples/quickstart.yaml", "--out", str(copy), "--limit", "8", "-q")
    assert res.returncode == 0, res.stderr
    db = sqlite3.connect(str(copy / "run.db"))
    usage = json.loads(db.execute("SELECT usage FROM sessions ORDER BY rowid DESC LIMIT 1").fetchone()[0])
    assert usage["total"]["calls"] == 0 and usage["total"]["cache_hits"] == 0  # nothing even looked up
    assert comparable(lines(copy / "examples.jsonl")) == comparable(lines(out / "examples.jsonl"))
    assert json.loads((copy / "summary.json").read_text())["documents"]["finished_before_this_session"] == 8


def test_changed_recipe_is_refused_unless_forced(quick, tmp_path):
    out, _ = quick
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    res = run_cli(
        "run", "examples/quickstart.yaml", "--out", str(copy), "--limit", "8", "-q", "--set", "loop.max_rounds=2"
    )
    assert res.returncode == 2
    assert "was started with another recipe" in res.stderr and "--force-new-recipe" in res.stderr
    res = run_cli(
        "run",
        "examples/quickstart.yaml",
        "--out",
        str(copy),
        "--limit",
        "8",
        "-q",
        "--set",
        "loop.max_rounds=2",
        "--force-new-recipe",
    )
    assert res.returncode == 0, res.stderr


def test_status_command(quick):
    out, _ = quick
    res = run_cli("status", str(out))
    assert res.returncode == 0 and "acceptance rate" in res.stdout
    assert run_cli("status", str(out / "nope")).returncode == 2


def test_missing_roles_and_documents_are_config_errors(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "models:\n  w: {provider: simulated, model: sim-weak}\nroles: {judge: w}\n"
        "documents: {paths: [examples/corpus/peps]}\n"
    )
    res = run_cli("run", str(cfg), "--out", str(tmp_path / "o"))
    assert res.returncode == 2
    assert "roles.challenger: required" in res.stderr and "roles.weak_solver: required" in res.stderr
    res = run_cli("run", "examples/quickstart.yaml", "--out", str(tmp_path / "o2"), "--set", "documents.paths=[]")
    assert res.returncode == 2 and "documents.paths" in res.stderr


def test_bad_documents_are_skipped_with_reasons_in_the_summary(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    shutil.copy(ROOT / "examples/corpus/peps/pep-0343.rst", docs / "good.rst")
    shutil.copy(ROOT / "examples/corpus/peps/pep-0343.rst", docs / "same.rst")
    (docs / "empty.md").write_text("")
    (docs / "blob.txt").write_bytes(b"\x00\x01\x02" * 100)
    res = run_cli(
        "run", "examples/quickstart.yaml", "--out", str(tmp_path / "o"), "-q", "--set", f"documents.paths=[{docs}]"
    )
    assert res.returncode == 0, res.stderr
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["documents"]["skipped"] == {"binary": 1, "duplicate": 1, "empty": 1}
    assert summary["documents"]["accepted"] + summary["documents"]["exhausted"] == 1


@pytest.mark.parametrize("config", ["examples/quickstart.yaml", "examples/agent.yaml"])
def test_kill_9_mid_run_then_resume_equals_an_uninterrupted_run(tmp_path, config):
    slow = [
        "--set",
        "models.weak.simulation.latency_ms=40",
        "--set",
        "models.strong.simulation.latency_ms=40",
        "--set",
        "loop.concurrency=2",
        "--set",  # prices do not change answers (not in the recipe): the reference run below has none
        "models.weak.price.input_per_mtok=1.5",
        "--set",
        "models.strong.price.output_per_mtok=7",
    ]
    env = {**os.environ, "AUTODATA_CACHE_DIR": str(tmp_path / "cache-a")}
    out = tmp_path / "killed"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "autodata",
            "run",
            config,
            "--out",
            str(out),
            "--limit",
            "8",
            "-q",
            *slow,
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    done = kill_after_documents(proc, out / "run.db", 2)
    assert 2 <= done < 8
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "autodata",
            "run",
            config,
            "--out",
            str(out),
            "--limit",
            "8",
            "-q",
            *slow,
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert res.returncode == 0, res.stderr
    # the reference: the same run, uninterrupted, with a cold cache of its own
    env_b = {**os.environ, "AUTODATA_CACHE_DIR": str(tmp_path / "cache-b")}
    ref = tmp_path / "reference"
    res = subprocess.run(
        [sys.executable, "-m", "autodata", "run", config, "--out", str(ref), "--limit", "8", "-q"],
        cwd=ROOT,
        env=env_b,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert res.returncode == 0, res.stderr
    assert comparable(lines(out / "examples.jsonl")) == comparable(lines(ref / "examples.jsonl"))
    assert lines(out / "episodes.jsonl") == lines(ref / "episodes.jsonl")
    killed = json.loads((out / "summary.json").read_text())
    assert killed["sessions"] == 2 and killed["documents"]["total"] == 8
    assert killed["sessions_unfinished"] == 1  # the killed one
    # true numbers: the summary's usage is the call log's, including what the killed session paid for
    db = sqlite3.connect(str(out / "run.db"))
    made = "CASE WHEN cache_hit THEN 0 ELSE {} END"
    calls, hits, tin, tout, cost, first = db.execute(
        f"SELECT SUM(1 - cache_hit), SUM(cache_hit), SUM({made.format('input_tokens')}), "
        f"SUM({made.format('output_tokens')}), SUM(cost_usd), SUM(session = 1) FROM calls"
    ).fetchone()
    db.close()
    assert first > 0  # the killed session's calls are in the log
    assert (killed["calls"], killed["cache_hits"]) == (calls, hits)
    assert (killed["input_tokens"], killed["output_tokens"]) == (tin, tout)
    assert cost > 0 and killed["cost_usd"] == pytest.approx(cost, abs=1e-6)
    by_role = killed["usage_by_role"]
    assert sum(r["calls"] for r in by_role.values()) == calls


def test_run_over_http_through_serve_sim_equals_in_process(tmp_path, serve_sim):
    base = serve_sim
    cfg = tmp_path / "http.yaml"
    models = {"weak": "sim-weak", "strong": "sim-strong", "judge": "sim-judge", "challenger": "sim-challenger"}
    lines_ = ["seed: 0", "documents: {paths: [examples/corpus/papers], max_tokens: 6000}", "models:"]
    for name, model in models.items():
        extra = ", sampling: {temperature: 0}" if name == "judge" else ""
        lines_.append(f"  {name}: {{provider: openai, model: {model}, base_url: '{base}'{extra}}}")
    lines_.append(
        "roles: {challenger: challenger, quality_verifier: judge, weak_solver: weak, "
        "strong_solver: strong, judge: judge}"
    )
    cfg.write_text("\n".join(lines_) + "\n")
    res = run_cli("run", str(cfg), "--out", str(tmp_path / "http"), "--limit", "3", "-q", "--no-cache")
    assert res.returncode == 0, res.stderr
    res = run_cli(
        "run", "examples/quickstart.yaml", "--out", str(tmp_path / "local"), "--limit", "3", "-q", "--no-cache"
    )
    assert res.returncode == 0, res.stderr

    def strip(rows):
        # the hashes cover the config (endpoints differ here); everything the models made must not
        return [{k: v for k, v in r.items() if k not in ("created_at", "recipe_hash", "frozen_hash")} for r in rows]

    http, local = lines(tmp_path / "http" / "examples.jsonl"), lines(tmp_path / "local" / "examples.jsonl")
    assert http and strip(http) == strip(local)
    assert lines(tmp_path / "http" / "episodes.jsonl") == lines(tmp_path / "local" / "episodes.jsonl")


def test_endpoint_errors_fail_documents_for_a_retry_instead_of_exhausting_them(tmp_path, serve_sim):
    """A typo in a model name must not mark documents as finished (they would never be retried)."""
    env = {**os.environ, "AUTODATA_CACHE_DIR": str(tmp_path / "cache")}
    base = serve_sim
    res = run_cli(
        "run",
        "examples/quickstart.yaml",
        "--out",
        str(tmp_path / "o"),
        "--limit",
        "3",
        "-q",
        "--set",
        "models.challenger.provider=openai",
        "--set",
        "models.challenger.model=no-such-model",
        "--set",
        f"models.challenger.base_url={base}",
        "--set",
        "models.challenger.simulation=null",
        "--no-preflight",  # with it, the run is refused before it starts (checked below)
        env=env,
    )

    assert res.returncode == 1, res.stderr
    assert "stopped: not_found (HTTP 404): challenger [http://127.0.0.1:" in res.stdout
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["documents"]["accepted"] == summary["documents"]["exhausted"] == 0
    assert summary["documents"]["failed_this_session"] >= 1
    db = sqlite3.connect(str(tmp_path / "o" / "run.db"))
    assert db.execute("SELECT COUNT(*) FROM documents").fetchone()[0] == 0  # nothing recorded as finished
    # pre-flight (the default) refuses the run before the first document and says what the server serves
    args = [a for a in res.args[3:] if a != "--no-preflight"]
    args[args.index("--out") + 1] = str(tmp_path / "p")
    res = run_cli(*args, env=env)
    assert res.returncode == 2 and "models.challenger.model: 'no-such-model' is not served" in res.stderr
    assert "it serves: sim-weak" in res.stderr and not (tmp_path / "p").exists()


def test_missing_api_key_is_a_user_error_before_the_run_starts(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "NO_SUCH_KEY_VAR"}
    res = run_cli(
        "run",
        "examples/quickstart.yaml",
        "--out",
        str(tmp_path / "o"),
        "-q",
        "--set",
        "models.judge.provider=openai",
        "--set",
        "models.judge.base_url=http://127.0.0.1:9/v1",
        "--set",
        "models.judge.simulation=null",
        "--set",
        "models.judge.model=m",
        "--set",
        "models.judge.api_key_env=NO_SUCH_KEY_VAR",
        env=env,
    )
    assert res.returncode == 2
    assert "models.judge.api_key_env: environment variable NO_SUCH_KEY_VAR is not set" in res.stderr
    assert "Traceback" not in res.stderr


def test_a_missing_document_path_fails_before_the_run_directory_is_written(tmp_path):
    out = tmp_path / "run"
    res = run_cli("run", "examples/quickstart.yaml", "--out", str(out), "--set", "documents.paths=[nope.txt]", "-q")
    assert res.returncode == 2 and "'nope.txt' is not a file" in res.stderr and "Traceback" not in res.stderr
    assert not (out / "run.db").exists()  # fixing the typo and running again just works


def test_answers_the_cache_could_not_save_are_counted_in_the_summary(tmp_path, monkeypatch, capsys):
    import asyncio

    from autodata.cli import _print_run_summary
    from autodata.config import load_config
    from autodata.llm.cache import CallCache
    from autodata.loop.run import run

    # a cache file whose table is gone: every batch fails with a file-wide error
    monkeypatch.setattr(CallCache, "_INSERT", "INSERT INTO no_such_table VALUES (?, ?, ?, ?)")
    cfg = load_config(ROOT / "examples" / "quickstart.yaml", [f"cache.path={tmp_path / 'c.sqlite'}"])
    summary = asyncio.run(run(cfg, tmp_path / "run", limit=2))
    assert summary["calls"] > 0
    assert summary["cache_write_errors"] == summary["calls"]  # every answer, none silently
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["cache_write_errors"] == summary["calls"]
    _print_run_summary(summary)
    shown = capsys.readouterr().out
    assert "answers the call cache could not save" in shown and "asks for them again" in shown
