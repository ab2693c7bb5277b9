"""`autodata run` end to end (2 documents) against emulations of real servers (tests/server_zoo.py).

Each mode emulates one server's documented behaviour (the source is cited in server_zoo.py); the run
goes through the CLI with pre-flight on, over HTTP to tests/faultserver.py on 127.0.0.1. Each test
asserts the outcome a user must get from that server: answers where the server gives them, attempt
errors counted (never judged), clear errors naming the config key, and true counts.
``python bench/zoo.py`` prints the table of outcomes per mode (docs/servers.md).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

import server_zoo as zoo
from autodata.cli import app
from autodata.errors import UserError
from conftest import small_optimize
from faultserver import completion, rate_limited, reply, status
from zoo_run import DOCS, ROOT, ServerThread, config_for, run_mode

pytestmark = pytest.mark.timeout(300)


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
    r = run_mode("vllm-small-window", tmp_path)
    assert r["exit"] == 2 and "documents.max_tokens" in r["output"] and "2048" in r["output"]
    # 2048 tokens hold no document beside the prompt and a 2048-token answer: "at most 0" is no advice
    assert "models.challenger.sampling.max_tokens lower (now 2048)" in r["output"] and "at most 0" not in r["output"]
    mode = zoo.MODES["vllm-small-window"]
    roomy = [dict(m, max_model_len=4096) for m in zoo.VLLM_MODELS]
    zoo.MODES["vllm-4k"] = zoo.Mode("vllm-4k", mode.source, mode.shape, models=roomy)
    try:
        (tmp_path / "b").mkdir()
        r = run_mode("vllm-4k", tmp_path / "b")
    finally:
        del zoo.MODES["vllm-4k"]
    assert r["exit"] == 2 and "set documents.max_tokens to at most 548" in r["output"]  # 4096 - ~1500 - 2048
    assert r["server_chat_requests"] <= 4 * 2  # only pre-flight's tiny calls


@pytest.mark.parametrize("name", ["ollama", "anthropic", "llama-server"])
def test_servers_ignoring_json_schema_step_down_and_run(tmp_path, name):
    r = run_mode(name, tmp_path)
    assert r["exit"] == 0 and finished(r) == 2, r["output"]
    assert r["servers"]["step_downs"] >= 1


def test_openai_reasoning_model_with_temperature_stops_with_the_key(tmp_path):
    r = run_mode("openai-reasoning-unfixed", tmp_path)
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


def _copy_docs(tmp: Path, n: int = 2) -> Path:
    docs = tmp / "docs"
    docs.mkdir()
    for d in sorted((ROOT / "examples/corpus/papers").glob("*"))[:n]:
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


def _optimize_config(mode: zoo.Mode, port: int, meta_port: int, docs: Path, **overrides: Any) -> dict[str, Any]:
    """An `autodata optimize` config on mode's server; the analyzer and implementer on another (a hosted
    model with a large window), so only the inner loop's evaluations meet the mode's quirk."""
    cfg = config_for(mode, port, docs, **overrides)
    cfg["documents"]["max_tokens"] = 6000
    cfg["loop"]["max_rounds"] = 1
    meta = dict(cfg["models"]["challenger"], base_url=f"http://127.0.0.1:{meta_port}/v1")
    cfg["models"]["meta"] = meta
    cfg["roles"].update(analyzer="meta", implementer="meta")
    cfg["optimize"] = small_optimize(1)
    return cfg


def test_optimize_refits_a_document_after_a_context_length_400(tmp_path):
    """SGLang with a 4,000-token window refuses the challenger's prompt of a 6,000-token document: the outer
    loop's evaluations re-fit the document to 70 % of its budget (the code `autodata run` uses), and later
    evaluations of that document start from the smaller budget; before, the whole optimization stopped."""
    mode = zoo.Mode("sglang-4k", "QwenLM/Qwen3#1321", zoo.sglang_window(4000))
    docs = _copy_docs(tmp_path, 5)
    with ServerThread(mode) as srv, ServerThread(zoo.MODES["serve-sim"]) as meta:
        path = tmp_path / "o.yaml"
        path.write_text(yaml.safe_dump(_optimize_config(mode, srv.port, meta.port, docs)))
        out = tmp_path / "opt"
        result = CliRunner().invoke(app, ["optimize", str(path), "--out", str(out), "--no-preflight", "-q"])
        refused = [r for r in srv.chat_records() if r.status == 400]
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == 0, result.output
    state = json.loads((out / "state.json").read_text())
    refits = [r for e in state["evaluated"] for rs in (e.get("refits") or {}).values() for r in rs]
    assert refused and refits and all("longer than the model's context length" in r["error"] for r in refits)
    assert {r["max_tokens"] for r in refits} <= {6000, 4200}  # 0.7 steps from documents.max_tokens
    assert state["budgets"] and all(b in (4200, 2940) for b in state["budgets"].values())
    # a document re-fitted once starts from its smaller budget afterwards: never refused twice at 6000
    first_cut = [
        d for e in state["evaluated"] for d, rs in (e.get("refits") or {}).items() if rs[0]["max_tokens"] == 6000
    ]
    assert len(first_cut) == len(set(first_cut))
    assert json.loads((out / "summary.json").read_text())["stopped"] is None


def _retry_after_once(seconds: float):
    """A plan: the first chat request gets 429 with ``Retry-After`` (OpenAI's rate limit,
    https://platform.openai.com/docs/guides/rate-limits), everything else an answer."""
    state = {"sent": False}

    def plan(a: Any) -> Any:
        if not state["sent"]:
            state["sent"] = True
            return rate_limited(seconds)
        return None

    return plan


@pytest.mark.parametrize("command", ["run", "baseline", "optimize", "generate"])
def test_a_long_retry_after_wait_is_shown_by_every_command(tmp_path, monkeypatch, command):
    """A server's Retry-After is waited out with a line saying so (not in silence) in each command that calls
    models; the line's threshold is lowered to 1 s here so the test waits 2 s, not minutes."""
    import autodata.cli_common as cli_common

    monkeypatch.setattr(cli_common, "WAIT_SHOWN_S", 1.0)
    mode = zoo.MODES["serve-sim"]
    docs = _copy_docs(tmp_path, 5 if command == "optimize" else 2)
    with ServerThread(mode, plan=_retry_after_once(2)) as srv, ServerThread(mode) as meta:
        cfg = config_for(mode, srv.port, docs, cache={"enabled": False})
        cfg["loop"]["max_rounds"] = 1
        args = ["--out", str(tmp_path / "out"), "--no-preflight"]
        if command == "optimize":
            cfg = _optimize_config(mode, srv.port, meta.port, docs, cache={"enabled": False})
        if command == "baseline":
            args += ["--method", "grounded", "--limit", "1"]
        if command == "generate":
            prompts = tmp_path / "p.jsonl"
            prompts.write_text(json.dumps({"prompt": "Say something about tides."}) + "\n")
            args = ["--out", str(tmp_path / "out"), "--input", str(prompts), "--model", "weak"]
        path = tmp_path / "c.yaml"
        path.write_text(yaml.safe_dump(cfg))
        result = CliRunner().invoke(app, [command, str(path), *args])
        statuses = [r.status for r in srv.chat_records()]
    assert statuses and statuses[0] == 429 and result.exit_code in (0, 1), (result.output, result.exception)
    assert "waiting 2 s" in result.output and "asked to wait (Retry-After)" in result.output, result.output


def test_sglang_small_window_refits_the_documents_in_run(tmp_path):
    """SGLang started with a window smaller than the prompt of a 3,000-token document: each document is
    re-fitted (70 % steps) and finishes; none fails and the challenger is never told."""
    r = run_mode("sglang-small-window", tmp_path)
    assert r["exit"] == 0 and finished(r) == 2 and r["failed"] == 0, r["output"]
    assert r["refitted"] == 2


@pytest.mark.parametrize(
    ("body", "told"),
    [
        # OpenRouter: an upstream failure inside a 200 (openrouter.ai/docs/api-reference/errors)
        ({"error": {"code": 502, "message": "Provider returned error"}}, "the server sent no answer this time"),
        # vLLM --reasoning-parser, the budget spent thinking (docs.vllm.ai features/reasoning_outputs)
        (
            completion({"content": None, "reasoning_content": "Let me think."}, "length"),
            "models.m.sampling.max_tokens leaves room for its thinking",
        ),
        # Azure's content filter (learn.microsoft.com azure openai content-filter)
        (completion({"content": None}, "content_filter"), "content filter"),
    ],
)
def test_preflight_tells_what_a_reply_without_an_answer_means(tmp_path, body, told):
    """Pre-flight's advice follows the reply: raising max_tokens helps a model that thought too long, not an
    upstream error; and a reply with no answer at all is not read as "structured output is not honoured"."""
    with ServerThread(zoo.MODES["serve-sim"], plan=lambda a: reply(body)) as srv:
        cfg = {"models": {"m": {"provider": "openai", "model": "sim-weak", "base_url": srv.url, "max_retries": 0}}}
        cfg["roles"] = dict.fromkeys(("challenger", "quality_verifier", "judge", "weak_solver", "strong_solver"), "m")
        path = tmp_path / "c.yaml"
        path.write_text(yaml.safe_dump(cfg))
        result = CliRunner().invoke(app, ["validate", str(path), "--check"])
    assert told in result.output and "structured-output check got no answer" in result.output, result.output
    assert "not honoured" not in result.output
    if "max_tokens" not in told:
        assert "max_tokens" not in result.output


def test_two_servers_that_both_say_local_are_two_servers(tmp_path):
    """Issue 12: llama-server and vLLM ``--served-model-name local`` both answer as ``local``; with the solvers
    at one temperature their requests are identical but for the server. Each server must get its own
    requests (the strong one got none: it was served the weak one's cached answers)."""
    weak_srv = zoo.Mode("llama-local", "ggml-org/llama.cpp tools/server", zoo.serves_one_model("sim-weak"))
    strong_srv = zoo.Mode("vllm-local", "docs.vllm.ai --served-model-name", zoo.serves_one_model("sim-strong"))
    docs = _copy_docs(tmp_path)
    with ServerThread(weak_srv) as a, ServerThread(strong_srv) as b, ServerThread(zoo.MODES["serve-sim"]) as c:
        cfg = config_for(zoo.MODES["serve-sim"], c.port, docs)
        cfg["models"]["weak"].update(model="local", base_url=a.url)
        cfg["models"]["strong"].update(model="local", base_url=b.url)
        cfg["loop"].update(weak_temperature=0.7, strong_temperature=0.7, weak_first=False)
        code, summary = _cli_run(cfg, tmp_path, tmp_path / "out")
        to_a, to_b = len(a.chat_records()), len(b.chat_records())
    assert code == 0 and summary["documents"]["accepted"] + summary["documents"]["exhausted"] == 2
    roles = summary["usage_by_role"]
    assert to_a == roles["weak_solver"]["calls"] > 0 and to_b == roles["strong_solver"]["calls"] > 0
    assert roles["strong_solver"]["cache_hits"] == 0


def test_the_openai_compatible_example_runs_against_vllm_sglang_and_a_hosted_judge(tmp_path, monkeypatch):
    """examples/openai-compatible.yaml as shipped (vLLM with two replicas and ``supports_n``, SGLang, a hosted
    judge with a key), only its URLs pointed at emulated servers that each serve their one model."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-real-key-000")
    monkeypatch.chdir(ROOT)  # the example's documents path is relative to the repository

    def listing(name: str, **extra: Any) -> list[dict[str, Any]]:  # what each server's /v1/models lists
        return [{"id": name, "object": "model", **extra}]

    weak = zoo.Mode(
        "vllm", "docs.vllm.ai", zoo.serves_one_model("sim-weak"), listing("Qwen/Qwen3-4B", max_model_len=40960)
    )
    strong = zoo.Mode(
        "sglang", "QwenLM/Qwen3#1321", zoo.serves_one_model("sim-strong"), listing("Qwen/Qwen3-235B-A22B")
    )
    judge = zoo.Mode("hosted", "platform.openai.com", zoo.serves_one_model("sim-judge"), listing("gpt-4.1"))
    with ServerThread(weak) as w1, ServerThread(weak) as w2, ServerThread(strong) as s, ServerThread(judge) as j:
        sets = [
            f"models.weak.base_url=[{w1.url}, {w2.url}]",
            f"models.strong.base_url={s.url}",
            f"models.judge.base_url={j.url}",
            "loop.max_rounds=2",
        ]
        args = ["run", str(ROOT / "examples/openai-compatible.yaml"), "--out", str(tmp_path / "out"), "--limit", "2"]
        result = CliRunner().invoke(app, [*args, "-q", *(x for kv in sets for x in ("--set", kv))])
        seen = [len(x.chat_records()) for x in (w1, w2, s, j)]
    assert result.exit_code == 0, (result.output, result.exception, getattr(result.exception, "details", None))
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["documents"]["accepted"] + summary["documents"]["exhausted"] == 2
    assert all(n > 0 for n in seen), seen  # both vLLM replicas, SGLang and the judge were used
    assert any(r.body.get("n", 1) > 1 for r in w1.chat_records() + w2.chat_records())  # supports_n: one prefill


@pytest.mark.parametrize("fault", ["solver_503", "judge_prose"])
def test_a_server_error_inside_a_round_fails_the_document_for_the_session_not_for_good(tmp_path, fault):
    """Issue 12: a server error is not a verdict on the document. Retries exhausted on the solvers' endpoint
    (503, https://platform.openai.com/docs/guides/error-codes), or a verifier and judge whose structured
    answers never parse after every re-ask (a server ignoring the schema, answering prose): the documents fail
    for this session with the error in the summary (exit 1), are not ``exhausted``, and a resume once the
    server is well again finishes them."""
    well = {"now": False}

    def broken(a: Any) -> Any:
        if well["now"]:
            return None
        if fault == "solver_503" and "response_format" not in a.body:
            return status(503, "Service Unavailable: upstream overloaded")
        if fault == "judge_prose" and a.body.get("model") == "sim-judge":
            return reply(completion({"content": "I think the question is fine, overall."}, "stop"))
        return None

    mode = zoo.MODES["serve-sim"]
    docs = _copy_docs(tmp_path)
    with ServerThread(mode, plan=broken) as srv:
        cfg = config_for(mode, srv.port, docs)
        first_exit, first = _cli_run(cfg, tmp_path, tmp_path / "out")
        well["now"] = True
        second_exit, second = _cli_run(cfg, tmp_path, tmp_path / "out")
    assert first_exit == 1 and first["documents"]["failed_this_session"] == 2
    assert first["documents"]["exhausted"] == first["documents"]["accepted"] == 0
    words = {"solver_503": "503", "judge_prose": "no usable report"}[fault]
    assert all(words in f["error"] for f in first["failures"]), first["failures"]
    assert second_exit == 0 and second["documents"]["accepted"] + second["documents"]["exhausted"] == 2


def test_generate_forgets_answers_without_json_from_a_server_that_ignores_the_schema(tmp_path):
    """Ollama accepts json_schema and ignores it (ollama/ollama#10001): the prose answers are not kept in the
    cache (a step-down does not change the key, so they would be replayed on every later run); `generate` says
    how many a second run asks again, and the second run makes that many calls."""
    line = json.loads((ROOT / "examples/prompts.jsonl").read_text().splitlines()[4])
    assert line["response_format"]["type"] == "json_schema"
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({**line, "id": f"q{i}", "prompt": f"{line['prompt']} ({i})"}) + "\n"
                               for i in range(4)))  # fmt: skip
    with ServerThread(zoo.MODES["ollama"]) as srv:
        cfg = {"models": {"m": {"provider": "openai", "model": "sim-weak", "base_url": srv.url, "max_retries": 0}}}
        path = tmp_path / "g.yaml"
        path.write_text(yaml.safe_dump(cfg))
        args = ["generate", str(path), "--input", str(prompts), "--out", str(tmp_path / "g"), "-q"]
        first = CliRunner().invoke(app, args)
        forgotten = json.loads((tmp_path / "g" / "summary.json").read_text())["forgotten_answers"]
        during = len(srv.chat_records())
        second = CliRunner().invoke(app, args)
        again = len(srv.chat_records()) - during
    assert first.exit_code == 0 and second.exit_code == 0, first.output
    assert forgotten > 0 and f"the {forgotten} replies without an answer are asked again" in first.output
    assert again == forgotten


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
