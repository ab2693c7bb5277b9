"""`autodata run` end to end (2 documents) against emulations of real servers (tests/server_zoo.py).

Each mode emulates one server's documented behaviour (the source is cited in server_zoo.py); the run
goes through the CLI with pre-flight on, over HTTP to tests/faultserver.py on 127.0.0.1. Each test
asserts the outcome a user must get from that server: answers where the server gives them, attempt
errors counted (never judged), clear errors naming the config key, and true counts.
``python tests/test_server_zoo.py`` prints the table of outcomes per mode.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

import server_zoo as zoo
from autodata.cli import app
from autodata.errors import UserError
from faultserver import FaultServer

pytestmark = pytest.mark.timeout(300)

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted((ROOT / "examples/corpus/papers").glob("*"))[:2]


class ServerThread:
    """A FaultServer on its own event loop in a thread, so the CLI (which runs its own loop) can call it."""

    def __init__(self, mode: zoo.Mode) -> None:
        self.loop = asyncio.new_event_loop()
        self.server = FaultServer(shape=mode.shape, models=mode.models)
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> FaultServer:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start(), self.loop).result(10)
        return self.server

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


def config_for(mode: zoo.Mode, port: int, docs: Path, **overrides: Any) -> dict[str, Any]:
    url = f"http://127.0.0.1:{port}{mode.path_prefix}"
    if mode.name == "azure":
        url += "?api-version=2024-10-21"

    def ep(model: str, **extra: Any) -> dict[str, Any]:
        d: dict[str, Any] = {
            "provider": "openai",
            "model": model,
            "base_url": url,
            "backoff_base_s": 0.01,
            "backoff_max_s": 0.05,
            "max_retries": 2,
            "timeout_s": 20,
        }
        d.update(extra)
        for k, v in mode.endpoint.items():
            d[k] = {**d.get(k, {}), **v} if isinstance(v, dict) else v
        return d

    cfg = {
        "seed": 0,
        "documents": {"paths": [str(docs)], "max_tokens": 3000},
        "loop": {"max_rounds": 3, "k_weak": 2, "k_strong": 2, "acceptance": {"preset": "deployed"}},
        "models": {
            "weak": ep("sim-weak"),
            "strong": ep("sim-strong"),
            "judge": ep("sim-judge", sampling={"temperature": 0}),
            "challenger": ep("sim-challenger"),
        },
        "roles": {
            "challenger": "challenger",
            "quality_verifier": "judge",
            "weak_solver": "weak",
            "strong_solver": "strong",
            "judge": "judge",
        },
    }
    for key, value in overrides.items():
        cfg[key] = value
    return cfg


def run_mode(name: str, tmp: Path, monkeypatch: Any = None, **overrides: Any) -> dict[str, Any]:
    """Run `autodata run` on 2 documents against mode ``name``; the outcome as numbers and messages."""
    mode = zoo.MODES[name]
    docs = tmp / "docs"
    if not docs.exists():
        docs.mkdir()
        for d in DOCS:
            shutil.copy(d, docs / d.name)
    with ServerThread(mode) as srv:
        cfg = config_for(mode, srv.port, docs, **overrides)
        path = tmp / "config.yaml"
        path.write_text(yaml.safe_dump(cfg))
        out = tmp / "out"
        result = CliRunner().invoke(app, ["run", str(path), "--out", str(out), "--quiet"])
        chat = srv.chat_records()
    exit_code, output = result.exit_code, result.output
    if isinstance(result.exception, UserError):  # what `autodata` (cli.main) prints, with exit 2
        exit_code, output = 2, output + "error: " + result.exception.render()
    elif result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    summary_path = out / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    docs_ = summary.get("documents", {})
    return {
        "mode": name,
        "exit": exit_code,
        "output": output,
        "accepted": docs_.get("accepted"),
        "exhausted": docs_.get("exhausted"),
        "failed": docs_.get("failed_this_session"),
        "calls": summary.get("calls"),
        "server_chat_requests": len(chat),
        "servers": summary.get("servers"),
        "simulated": summary.get("simulated_models"),
        "stopped": summary.get("stopped"),
        "failures": [f.get("error", "")[:160] for f in summary.get("failures", [])],
        "summary": summary,
    }


@pytest.fixture(autouse=True)
def _env(monkeypatch, tmp_path, no_proxies):
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", zoo.AZURE_KEY)
    monkeypatch.chdir(tmp_path)


def finished(r: dict[str, Any]) -> int:
    return (r["accepted"] or 0) + (r["exhausted"] or 0)


def test_serve_sim_through_provider_openai_is_labelled_simulated(tmp_path):
    r = run_mode("serve-sim", tmp_path)
    assert r["exit"] == 0 and finished(r) == 2
    assert r["simulated"] == ["challenger", "judge", "strong", "weak"]
    assert "SIMULATED" in r["output"]
    # the preflight's calls are not the run's: the run's calls are what the server saw, less pre-flight's
    assert r["calls"] == r["server_chat_requests"] - 2 * 4


def test_vllm_reasoning_parser_budget_spent_thinking_is_an_attempt_error(tmp_path):
    r = run_mode("vllm-reasoning", tmp_path)
    assert r["exit"] in (0, 1)
    assert r["servers"]["replies_without_answer"].get("reasoning_only", 0) > 0
    assert r["simulated"] == []
    assert finished(r) + r["failed"] == 2  # no document accepted or rejected on missing evidence
    assert all("valid attempts" in f for f in r["failures"])


def test_vllm_context_window_too_small_for_the_budget_is_caught_before_the_run(tmp_path):
    mode = zoo.MODES["vllm-reasoning"]
    small = [dict(m, max_model_len=2048) for m in zoo.VLLM_MODELS]
    mode = zoo.Mode(mode.name, mode.source, mode.shape, models=small)
    zoo.MODES["vllm-small"] = mode
    try:
        r = run_mode("vllm-small", tmp_path)
    finally:
        del zoo.MODES["vllm-small"]
    assert r["exit"] == 2 and "documents.max_tokens" in r["output"] and "2048" in r["output"]
    assert r["server_chat_requests"] <= 4 * 2  # only pre-flight's tiny calls


@pytest.mark.parametrize("name", ["ollama", "anthropic", "llama-server"])
def test_servers_ignoring_json_schema_step_down_and_run(tmp_path, name):
    r = run_mode(name, tmp_path)
    assert r["exit"] == 0 and finished(r) == 2, r["output"]
    assert r["servers"]["step_downs"] >= 1


def test_openai_reasoning_model_with_temperature_stops_with_the_key(tmp_path):
    mode = zoo.MODES["openai-reasoning"]
    zoo.MODES["openai-reasoning-unfixed"] = zoo.Mode("openai-reasoning-unfixed", mode.source, mode.shape)
    try:
        r = run_mode("openai-reasoning-unfixed", tmp_path)
    finally:
        del zoo.MODES["openai-reasoning-unfixed"]
    assert r["exit"] == 2
    assert "models.judge.sampling.temperature: null" in r["output"]
    # the loop's solver temperatures (loop.weak_temperature 0.7) go with pre-flight's call and are caught too
    assert "models.weak.sampling.temperature: null" in r["output"] and "loop.weak_temperature" in r["output"]


def test_reasoning_model_refusal_mid_run_stops_before_the_next_document(tmp_path):
    """Without pre-flight, the first refusal of the solver's temperature stops the run with the key."""
    mode = zoo.MODES["openai-reasoning"]
    docs = tmp_path / "docs"
    docs.mkdir()
    for d in DOCS:
        shutil.copy(d, docs / d.name)
    with ServerThread(mode) as srv:
        cfg = config_for(mode, srv.port, docs)
        cfg["models"]["weak"]["sampling"] = {}  # the weak endpoint forgets temperature: null
        cfg["loop"]["concurrency"] = 1
        path = tmp_path / "c.yaml"
        path.write_text(yaml.safe_dump(cfg))
        result = CliRunner().invoke(app, ["run", str(path), "--out", str(tmp_path / "o"), "--no-preflight", "-q"])
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert result.exit_code != 0 and "models.weak.sampling.temperature: null" in summary["stopped"]
    assert summary["documents"]["accepted"] + summary["documents"]["exhausted"] == 0


def test_openai_reasoning_model_with_null_temperature_runs(tmp_path):
    r = run_mode("openai-reasoning", tmp_path)
    assert r["exit"] == 0 and finished(r) == 2, r["output"]


def test_gemini_list_errors_and_missing_messages(tmp_path):
    r = run_mode("gemini", tmp_path)
    assert r["exit"] in (0, 1) and r["servers"]["schema_fallbacks"] > 0
    assert r["servers"]["replies_without_answer"].get("no_message", 0) > 0


def test_openrouter_errors_inside_replies_are_attempt_errors(tmp_path):
    r = run_mode("openrouter", tmp_path)
    assert r["servers"]["replies_without_answer"].get("provider_error", 0) > 0


def test_azure_classic_url_key_header_and_content_filter(tmp_path):
    r = run_mode("azure", tmp_path)
    assert r["exit"] in (0, 1) and r["calls"]
    assert r["servers"]["replies_without_answer"].get("content_filter", 0) > 0


def test_quota_stops_before_the_first_document(tmp_path):
    """Pre-flight meets the 429 insufficient_quota: exit 2 with the provider's words, no document started."""
    r = run_mode("quota", tmp_path)
    assert r["exit"] == 2 and "billing" in r["output"] and "models.weak (account)" in r["output"]
    assert r["server_chat_requests"] == 4  # one per endpoint, never retried


def test_quota_during_the_run_stops_it(tmp_path):
    """The same refusal met mid-run (pre-flight skipped): the run stops at once, naming the cause."""
    mode = zoo.MODES["quota"]
    docs = tmp_path / "docs"
    docs.mkdir()
    for d in DOCS:
        shutil.copy(d, docs / d.name)
    with ServerThread(mode) as srv:
        path = tmp_path / "c.yaml"
        path.write_text(yaml.safe_dump(config_for(mode, srv.port, docs)))
        result = CliRunner().invoke(app, ["run", str(path), "--out", str(tmp_path / "o"), "--no-preflight", "-q"])
        sent = len(srv.chat_records())
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert result.exit_code != 0 and summary["stopped"] and "billing" in summary["stopped"]
    assert summary["documents"]["accepted"] == 0 and sent <= 2  # the documents in flight, one call each


def test_sglang_context_length_wording_is_a_context_error(tmp_path):
    """SGLang's "longer than the model's context length" is a context error (QwenLM/Qwen3#1321): the document
    is re-fitted or fails for the session, never accepted or rejected on it."""
    docs = tmp_path / "docs"
    docs.mkdir()
    words = " ".join(f"tide{i % 97} harbour mooring schedule" for i in range(30000))
    (docs / "long.txt").write_text("A long survey of harbour tides.\n\n" + words)
    r = run_mode("sglang", tmp_path, documents={"paths": [str(docs)], "max_tokens": 60000})
    text = json.dumps(r["summary"]) + r["output"]
    assert "context" in text, text[-2000:]


def _cli_run(cfg: dict[str, Any], tmp: Path, out: Path, name: str = "c.yaml") -> tuple[int, dict[str, Any]]:
    path = tmp / name
    path.write_text(yaml.safe_dump(cfg))
    result = CliRunner().invoke(app, ["run", str(path), "--out", str(out), "--no-preflight", "-q"])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, json.loads((out / "summary.json").read_text())


def _copy_docs(tmp: Path) -> Path:
    docs = tmp / "docs"
    docs.mkdir()
    for d in DOCS:
        shutil.copy(d, docs / d.name)
    return docs


@pytest.mark.parametrize("kind", sorted(zoo.NO_ANSWER_REPLIES))
def test_a_reply_without_an_answer_is_asked_again_on_resume(tmp_path, kind):
    """A solver reply with no answer (Azure's filter, vLLM's reasoning-only, an unclosed think, empty) is not
    cached: the documents it failed are retried on resume and the server is asked again -- it answers now --
    instead of the useless replies being replayed from the cache (they were: the resume failed the same way)."""
    outage = zoo.Outage(kind)
    mode = zoo.Mode(f"outage-{kind}", "see NO_ANSWER_REPLIES", outage)
    docs = _copy_docs(tmp_path)
    out = tmp_path / "out"
    with ServerThread(mode) as srv:
        cfg = config_for(mode, srv.port, docs)
        cfg["loop"]["max_rounds"] = 1  # one round: every solver request of the resume was sent in the outage
        first_exit, first = _cli_run(cfg, tmp_path, out)
        during = len(srv.chat_records())
        outage.end()
        second_exit, second = _cli_run(cfg, tmp_path, out)
        asked_again = [r for r in srv.chat_records()[during:] if "response_format" not in r.body]
    assert first_exit == 1 and first["documents"]["failed_this_session"] == 2
    assert first["documents"]["accepted"] + first["documents"]["exhausted"] == 0
    assert all("valid attempts" in f["error"] and kind in f["error"] for f in first["failures"])
    assert first["servers"]["replies_without_answer"][kind] == outage.sent
    assert second_exit == 0, second.get("failures")
    assert second["documents"]["accepted"] + second["documents"]["exhausted"] == 2
    assert second["documents"]["failed_this_session"] == 0
    assert asked_again  # the solvers' requests of the outage went to the server again


def test_runs_are_reproducible_from_the_cache_with_replies_without_an_answer(tmp_path):
    """A server that honours ``seed`` gives the same reply to the same request: about 30 % of solver requests
    have no answer, each replaced by a re-sample. A second run from the same cache asks exactly those requests
    again (the re-samples and everything else are replayed) and writes the same examples."""
    mode = zoo.Mode("no-answer-by-seed", "vllm reasoning_only", zoo.sometimes_no_answer("reasoning_only"))
    docs = _copy_docs(tmp_path)
    with ServerThread(mode) as srv:
        cfg = config_for(mode, srv.port, docs)
        cfg["loop"]["max_resamples"] = 4
        _, first = _cli_run(cfg, tmp_path, tmp_path / "one")
        during = len(srv.chat_records())
        _, second = _cli_run(cfg, tmp_path, tmp_path / "two")
        again = srv.chat_records()[during:]
    no_answer = first["servers"]["replies_without_answer"].get("reasoning_only", 0)
    assert no_answer > 0
    assert len(again) == no_answer and second["servers"]["replies_without_answer"]["reasoning_only"] == no_answer
    assert all("response_format" not in r.body for r in again)
    for name in ("examples.jsonl", "episodes.jsonl"):
        one = [json.loads(x) for x in (tmp_path / "one" / name).read_text().splitlines()]
        two = [json.loads(x) for x in (tmp_path / "two" / name).read_text().splitlines()]
        for row in one + two:
            row.pop("created_at", None)
        assert one == two, name
    assert first["documents"] == second["documents"]


def test_generate_says_which_replies_a_second_run_asks_again(tmp_path):
    """`autodata generate` used to promise zero calls on a second run; replies without an answer are asked
    again, and it says how many (the second run makes exactly that many calls)."""
    mode = zoo.Mode("no-answer-by-seed", "vllm reasoning_only", zoo.sometimes_no_answer("reasoning_only", 0.5))
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": f"Say something about tide {i}."}) + "\n" for i in range(12)))
    with ServerThread(mode) as srv:
        cfg = {"models": {"m": {"provider": "openai", "model": "sim-weak", "base_url": srv.url, "max_retries": 0}}}
        path = tmp_path / "g.yaml"
        path.write_text(yaml.safe_dump(cfg))
        args = ["generate", str(path), "--input", str(prompts), "--out", str(tmp_path / "g"), "-q"]
        first = CliRunner().invoke(app, args)
        during = len(srv.chat_records())
        second = CliRunner().invoke(app, args)
        assert second.exit_code == 0, second.output
        again = len(srv.chat_records()) - during
    no_answer = json.loads((tmp_path / "g" / "summary.json").read_text())["usage"]["total"]["problems"][
        "reasoning_only"
    ]
    assert 0 < again == no_answer < 12
    assert f"the {again} replies without an answer are asked again" in first.output
    assert "zero calls" not in first.output


def test_validate_check_runs_preflight_and_warns_about_one_name_on_two_servers(tmp_path):
    """Issue 12: llama-server and vLLM --served-model-name both say ``local``; ``validate`` warns, and
    ``validate --check`` contacts each server (model listed, one call, schema honoured, context window)."""
    mode = zoo.MODES["vllm-reasoning"]
    with ServerThread(mode) as a, ServerThread(zoo.MODES["serve-sim"]) as b:
        cfg = {
            "models": {
                "one": {"provider": "openai", "model": "sim-weak", "base_url": a.url},
                "two": {"provider": "openai", "model": "sim-weak", "base_url": b.url},
            },
            "roles": {
                "challenger": "one",
                "quality_verifier": "one",
                "judge": "one",
                "weak_solver": "one",
                "strong_solver": "two",
            },
        }
        path = tmp_path / "c.yaml"
        path.write_text(yaml.safe_dump(cfg))
        plain = CliRunner().invoke(app, ["validate", str(path)])
        checked = CliRunner().invoke(app, ["validate", str(path), "--check"])
        cfg["models"]["two"]["model"] = "no-such"
        path.write_text(yaml.safe_dump(cfg))
        bad = CliRunner().invoke(app, ["validate", str(path), "--check"])
    assert plain.exit_code == 0 and "all declare model 'sim-weak' on different servers" in plain.output
    assert checked.exit_code == 0, checked.output
    assert "context windows one 32,768" in checked.output  # vLLM's max_model_len
    assert "SIMULATED" in checked.output and "two" in checked.output.split("SIMULATED")[1]  # serve-sim said so
    assert isinstance(bad.exception, UserError)
    assert any("models.two.model: 'no-such' is not served" in d and "sim-weak" in d for d in bad.exception.details)


if __name__ == "__main__":  # the table for the closing note
    import sys
    import tempfile

    rows = []
    for name in [n for n in zoo.MODES]:
        with tempfile.TemporaryDirectory() as d:
            import os

            os.environ["AZURE_OPENAI_API_KEY"] = zoo.AZURE_KEY
            os.chdir(d)
            r = run_mode(name, Path(d))
            rows.append(r)
            s = r["servers"] or {}
            print(
                f"{name:18} exit {r['exit']} accepted {r['accepted']} exhausted {r['exhausted']} failed {r['failed']} "
                f"calls {r['calls']} (server saw {r['server_chat_requests']}) attempt-errors "
                f"{s.get('replies_without_answer')} step-downs {s.get('step_downs')} "
                f"schema-fallbacks {s.get('schema_fallbacks')} stopped {bool(r['stopped'])} "
                f"{(r['failures'] or [''])[0][:100]}",
                file=sys.stderr if False else sys.stdout,
            )
