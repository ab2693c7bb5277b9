"""The command line as a user meets it: exit codes, messages, outputs, serve-sim over real HTTP."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "autodata", *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT
    )


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_validate_good_config():
    res = run("validate", "examples/sim.yaml")
    assert res.returncode == 0, res.stderr
    assert "valid" in res.stdout


def test_validate_bad_config_exit_2_no_traceback(tmp_path):
    cfg = write(tmp_path / "bad.yaml", "models:\n  weak:\n    provider: vllm\n    model: m\n    max_concurency: 2\n")
    res = run("validate", str(cfg))
    assert res.returncode == 2
    assert "Traceback" not in res.stderr
    assert "models.weak.provider: 'vllm' is not allowed; expected 'openai' or 'simulated'" in res.stderr
    assert "models.weak.max_concurency: unknown key 'max_concurency'" in res.stderr


def test_validate_unknown_simulated_model(tmp_path):
    cfg = write(tmp_path / "c.yaml", "models:\n  w: {provider: simulated, model: sim-huge}\n")
    res = run("validate", str(cfg))
    assert res.returncode == 2
    assert "models.w.model: 'sim-huge' is not a simulated model; expected one of: sim-weak" in res.stderr


def test_set_override_is_validated_like_the_file():
    res = run("validate", "examples/sim.yaml", "--set", "models.weak.max_concurrency=zero")
    assert res.returncode == 2
    assert "models.weak.max_concurrency: must be a valid integer" in res.stderr
    res = run("validate", "examples/sim.yaml", "--set", "models.weak.max_concurrency=7")
    assert res.returncode == 0 and "7" in res.stdout


def test_usage_errors_exit_2(tmp_path):
    assert run("validate").returncode == 2  # missing argument
    assert run("validate", str(tmp_path / "missing.yaml")).returncode == 2
    res = run("generate", "--input", str(tmp_path / "none.jsonl"), "--out", str(tmp_path / "o"))
    assert res.returncode == 2 and "input file not found" in res.stderr
    res = run("generate", "--input", "examples/prompts.jsonl", "--out", str(tmp_path / "o"), "--model", "huge")
    assert res.returncode == 2 and "unknown model 'huge'; defined models: challenger, judge, strong, weak" in res.stderr
    assert run("generate", "--n", "0").returncode == 2


def test_generate_embedded_default_then_rerun_makes_zero_calls(tmp_path):
    out = tmp_path / "out"
    res = run("generate", "--input", "examples/prompts.jsonl", "--out", str(out), "--n", "2")
    assert res.returncode == 0, res.stderr
    assert "SIMULATED" in res.stderr
    summary = json.loads((out / "summary.json").read_text())
    lines = len((ROOT / "examples/prompts.jsonl").read_text().splitlines())
    assert summary["requests"] == summary["completed"] == 2 * lines
    assert summary["usage"]["total"]["calls"] >= 2 * lines
    assert summary["simulated"] is True
    records = [json.loads(x) for x in (out / "completions.jsonl").open()]
    assert [(r["id"], r["sample"]) for r in records][:4] == [
        ("pep8-indent", 0),
        ("pep8-indent", 1),
        ("pep20-explicit", 0),
        ("pep20-explicit", 1),
    ]
    quiz = [r for r in records if r["id"] == "pep484-quiz"]
    assert all(set(r["parsed"]) >= {"question", "answer", "difficulty"} for r in quiz)
    assert all(1 <= int(r["parsed"]["difficulty"]) <= 5 for r in quiz)

    res = run("generate", "--input", "examples/prompts.jsonl", "--out", str(tmp_path / "again"), "--n", "2")
    assert res.returncode == 0, res.stderr
    again = json.loads((tmp_path / "again" / "summary.json").read_text())
    assert again["usage"]["total"]["calls"] == 0
    assert again["from_cache"] == 2 * lines
    texts = [json.loads(x)["text"] for x in (tmp_path / "again" / "completions.jsonl").open()]
    assert texts == [r["text"] for r in records]


def test_generate_no_cache_flag_makes_calls_again(tmp_path):
    for name in ("a", "b"):
        res = run("generate", "--input", "examples/prompts.jsonl", "--out", str(tmp_path / name), "--no-cache", "-q")
        assert res.returncode == 0, res.stderr
        summary = json.loads((tmp_path / name / "summary.json").read_text())
        assert summary["from_cache"] == 0 and summary["cache"]["enabled"] is False


def test_generate_bad_lines_are_reported_not_fatal(tmp_path):
    prompts = write(
        tmp_path / "p.jsonl",
        "\n".join(
            [
                json.dumps({"id": "ok", "prompt": "Explain PEP 8"}),
                "{not json",
                json.dumps(["a", "list"]),
                json.dumps({"id": "both", "prompt": "x", "messages": [{"role": "user", "content": "y"}]}),
                json.dumps({"id": "typo", "promt": "x"}),
                json.dumps({"id": "ok", "prompt": "duplicate id"}),
                json.dumps({"id": "badrf", "prompt": "x", "response_format": {"type": "yaml"}}),
                json.dumps({"id": "ok2", "messages": [{"role": "user", "content": "Explain PEP 20"}]}),
                json.dumps(
                    {
                        "id": "badschema",
                        "prompt": "x",
                        "response_format": {
                            "type": "json_schema",
                            "json_schema": {"name": "X", "schema": {"type": "bogus"}},
                        },
                    }
                ),
            ]
        )
        + "\n",
    )
    res = run("generate", "--input", str(prompts), "--out", str(tmp_path / "o"), "-q")
    assert res.returncode == 0, res.stderr
    done = [json.loads(x)["id"] for x in (tmp_path / "o" / "completions.jsonl").open()]
    assert done == ["ok", "ok2"]
    failures = {f["line"]: f for f in map(json.loads, (tmp_path / "o" / "failures.jsonl").open())}
    assert set(failures) == {2, 3, 4, 5, 6, 7, 9}
    assert "not a valid JSON Schema" in failures[9]["error"]
    assert all(f["kind"] == "bad_input" for f in failures.values())
    assert "not valid JSON" in failures[2]["error"]
    assert "expected a JSON object, got list" in failures[3]["error"]
    assert "exactly one of 'prompt' or 'messages'" in failures[4]["error"]
    assert "promt: unknown key 'promt'" in failures[5]["error"]
    assert "duplicate id 'ok'" in failures[6]["error"]
    assert "response_format.type must be" in failures[7]["error"]
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["bad_lines"] == 7 and summary["completed"] == 2
    res = run("generate", "--input", str(prompts), "--out", str(prompts), "-q")  # --out is a file
    assert res.returncode == 2 and "cannot use" in res.stderr and "Traceback" not in res.stderr


def test_serve_sim_matches_in_process_answers(tmp_path, serve_sim):
    base = serve_sim
    models = json.load(urllib.request.urlopen(base + "/models", timeout=5))
    assert {m["id"] for m in models["data"]} >= {"sim-weak", "sim-strong"}
    cfg = write(tmp_path / "http.yaml", f"models:\n  weak: {{provider: openai, model: sim-weak, base_url: '{base}'}}\n")
    out_http, out_local = tmp_path / "http", tmp_path / "local"
    res = run(
        "generate",
        str(cfg),
        "--input",
        "examples/prompts.jsonl",
        "--out",
        str(out_http),
        "-q",
        "--no-cache",
        "--n",
        "2",
    )
    assert res.returncode == 0, res.stderr
    res = run(
        "generate",
        "--input",
        "examples/prompts.jsonl",
        "--out",
        str(out_local),
        "-q",
        "--no-cache",
        "--n",
        "2",
        "--model",
        "weak",
    )
    assert res.returncode == 0, res.stderr
    http = [json.loads(x) for x in (out_http / "completions.jsonl").open()]
    local = [json.loads(x) for x in (out_local / "completions.jsonl").open()]
    assert [r["text"] for r in http] == [r["text"] for r in local]
    assert [r["usage"] for r in http] == [r["usage"] for r in local]


@pytest.mark.parametrize("cmd", [["cache", "stats"], ["models"]])
def test_small_commands_run(cmd):
    res = run(*cmd)
    assert res.returncode == 0, res.stderr


def test_cache_clear(tmp_path):
    assert run("generate", "--input", "examples/prompts.jsonl", "--out", str(tmp_path / "o"), "-q").returncode == 0
    res = run("cache", "stats")
    assert "answers" in res.stdout and "sim-weak" in res.stdout
    res = run("cache", "clear")
    assert res.returncode == 0 and "removed" in res.stdout
    res = run("generate", "--input", "examples/prompts.jsonl", "--out", str(tmp_path / "o2"), "-q")
    summary = json.loads((tmp_path / "o2" / "summary.json").read_text())
    assert summary["from_cache"] == 0
