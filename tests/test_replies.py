"""Replies that hold no usable answer, over the real HTTP path (openai SDK -> tests/faultserver.py).

Each shape is one a real server sends; the source is cited at each test. The reply becomes a
``Completion`` whose ``problem`` says why there is no answer (an attempt error for the loop), and a
structured call whose reply has a problem is asked again, never parsed into a default.
"""

from __future__ import annotations

import functools

import pytest
from pydantic import BaseModel

from autodata.config import validate_config
from autodata.llm.replies import split_reasoning
from autodata.llm.runtime import ModelRuntime
from autodata.llm.types import StructuredOutputError
from faultserver import completion, reply

pytestmark = [pytest.mark.timeout(60), pytest.mark.usefixtures("no_proxies")]

MSG = [{"role": "user", "content": "What sets the pace of tidal mooring schedules in the harbour?"}]


@pytest.fixture
def serve(serve):
    """tests/conftest.py's ``serve`` (a fault server and a runtime on it) with this file's retry budget, 2."""
    return functools.partial(serve, max_retries=2)


def always(fault):
    return lambda a: fault


# Each case: (the reply body, the problem code expected, what the source is)
CASES = [
    # Azure OpenAI: a filtered completion has finish_reason content_filter and content null
    # (https://learn.microsoft.com/en-us/azure/ai-services/openai/concepts/content-filter; nodetool-ai/nodetool#5755)
    (completion({"content": None}, "content_filter"), "content_filter"),
    # OpenRouter: finish_reason "error" with the upstream error inside the choice
    # (https://openrouter.ai/docs/api-reference/overview#finish-reason; pydantic/pydantic-ai#2844)
    (
        completion(
            {"content": ""}, "error", choice={"error": {"code": 502, "message": "Upstream provider disconnected"}}
        ),
        "provider_error",
    ),
    # OpenRouter / gateways: HTTP 200 with an error object and no choices (SWE-agent/mini-swe-agent#902)
    (
        {"error": {"code": 429, "message": "Provider returned error", "metadata": {"raw": "overloaded"}}},
        "provider_error",
    ),
    # Gemini's OpenAI-compatible endpoint: a choice without message (FuzzAnything/PromptFuzz#42 "missing field message")
    (completion(None, "stop"), "no_message"),
    # vLLM --reasoning-parser: the budget spent thinking, content null, all in reasoning_content / reasoning
    # (https://docs.vllm.ai/en/latest/features/reasoning_outputs.html)
    (completion({"content": None, "reasoning_content": "Let me think about tides..."}, "length"), "reasoning_only"),
    (completion({"content": None, "reasoning": "Let me think about tides..."}, "length"), "reasoning_only"),
    # no reasoning parser: an unclosed <think> cut by the token limit (jundot/omlx#2607)
    (completion({"content": "<think>First, the moon pulls the water"}, "length"), "unclosed_think"),
    (completion({"content": "   "}, "stop"), "empty"),
    (completion({"content": "The tide sets the pace because"}, "length"), "truncated"),
]


@pytest.mark.parametrize(("body", "code"), CASES, ids=[f"{i}-{c}" for i, (_, c) in enumerate(CASES)])
async def test_reply_without_an_answer_has_a_problem(serve, body, code):
    srv, rt = await serve(plan=always(reply(body)))
    done = await rt.complete("m", MSG, role="weak_solver")
    assert done.problem is not None and done.problem.startswith(code + ":"), done.problem
    assert srv.count == 1  # not retried at the transport level: the loop decides what to do with it
    assert rt.meter.totals.problems == {code: 1}


@pytest.mark.parametrize(("body", "code"), CASES, ids=[f"{i}-{c}" for i, (_, c) in enumerate(CASES)])
async def test_replies_without_an_answer_are_never_served_from_the_cache(serve, tmp_path, body, code):
    """A reply with no answer (every problem but ``truncated``) is not cached: a resumed or repeated run
    asks the server again -- which may answer now -- instead of replaying the useless reply. A truncated
    answer holds text a structured parser may repair: cached like any answer."""
    from autodata.llm.cache import CallCache

    srv, _ = await serve(plan=lambda a: reply(body) if a.index == 0 else None)
    cfg = validate_config({"models": {"m": {"provider": "openai", "model": "sim-weak", "base_url": srv.url}}})
    async with ModelRuntime(cfg, cache=CallCache(tmp_path / "c.sqlite")) as rt:
        first = await rt.complete("m", MSG)
    async with ModelRuntime(cfg, cache=CallCache(tmp_path / "c.sqlite")) as rt:  # a later run: same cache
        second = await rt.complete("m", MSG)
    assert first.problem and first.problem.startswith(code + ":")
    if code == "truncated":
        assert second.cached and second.problem == first.problem and srv.count == 1
    else:
        assert second.problem is None and second.text and not second.cached
        assert srv.count == 2


async def test_a_stored_reply_without_an_answer_is_asked_again(serve, tmp_path):
    """A cache written before this rule may hold such replies: they are not replayed either."""
    from autodata.llm.cache import CallCache
    from autodata.llm.types import Completion, Usage

    srv, _ = await serve()
    cfg = validate_config({"models": {"m": {"provider": "openai", "model": "sim-weak", "base_url": srv.url}}})
    cache = CallCache(tmp_path / "c.sqlite")
    async with ModelRuntime(cfg, cache=cache) as rt:
        key = rt.request("m", MSG).cache_key()
        why = "content_filter: finish_reason content_filter with 0 characters of content"
        stored = Completion(text="", finish_reason="content_filter", usage=Usage(), model="sim-weak", problem=why)
        cache.put(key, "sim-weak", stored.to_cache())
        done = await rt.complete("m", MSG)
    assert done.problem is None and not done.cached and srv.count == 1


async def test_gemini_list_error_body_is_unwrapped(serve):
    """Gemini sends its error body as a JSON list (FuzzAnything/PromptFuzz#42)."""
    body = [{"error": {"code": 400, "message": 'Invalid JSON payload received. Unknown name "x"', "status": "X"}}]
    _, rt = await serve(plan=always(reply(body, 400)))
    with pytest.raises(Exception) as info:
        await rt.complete("m", MSG)
    assert 'Unknown name "x"' in str(info.value)


@pytest.mark.parametrize(
    ("content", "answer", "reasoning"),
    [
        # template-opened reasoning: QwQ / R1 distills / Qwen3-*-Thinking-2507 output only "...</think>"
        # (huggingface.co mlx-community/DeepSeek-R1-Distill-Qwen-1.5B-4bit discussion 2; unsloth/QwQ-32B discussion 1)
        ("The moon pulls.\n</think>\n\nTides set the pace.", "Tides set the pace.", "The moon pulls."),
        ("<think>The moon pulls.</think>Tides set the pace.", "Tides set the pace.", "The moon pulls."),
        ("Tides set the pace.", "Tides set the pace.", None),
    ],
)
async def test_reasoning_is_split_off_and_the_answer_is_what_follows(serve, content, answer, reasoning):
    _, rt = await serve(plan=always(reply(completion({"content": content}, "stop"))))
    done = await rt.complete("m", MSG)
    assert (done.text, done.reasoning, done.problem) == (answer, reasoning, None)


def test_split_reasoning_cases():
    assert split_reasoning("a <think>b</think> c").reasoning is None  # mid-text: no split
    assert split_reasoning("<think>open").unclosed


class Verdict(BaseModel):
    ok: bool
    why: str


async def test_structured_reply_with_a_problem_is_asked_again_and_never_parsed(serve):
    """A filtered first answer is recorded and re-asked; the second (normal) answer is the value."""
    srv, rt = await serve(
        plan=lambda a: reply(completion({"content": None}, "content_filter")) if a.index == 0 else None
    )
    res = await rt.structured("m", MSG, Verdict, role="judge")
    assert isinstance(res.value, Verdict)
    assert [f.error.split(" (")[0] for f in res.failures] == ["the reply held no answer"]
    assert srv.count == 2
    # the re-ask carries the schema even in json_schema mode
    assert '"why"' in srv.records[1].body["messages"][-1]["content"]


async def test_structured_never_turns_problem_replies_into_a_value(serve):
    srv, rt = await serve(plan=always(reply(completion({"content": None, "reasoning": "hmm"}, "length"))))
    with pytest.raises(StructuredOutputError) as info:
        await rt.structured("m", MSG, Verdict, role="judge")
    assert srv.count == 3 and len(info.value.failures) == 3
    assert all("reasoning_only" in f.error for f in info.value.failures)


async def test_missing_usage_is_estimated_and_counted_as_such(serve):
    """Servers that send no ``usage`` (nodetool-ai/nodetool#5755): the tokens are our estimate, counted apart,
    and the estimate includes the schema sent in response_format."""
    body = completion({"content": '{"ok": true, "why": "tides"}'}, "stop")
    _, rt = await serve(plan=always(reply(body)))
    res = await rt.structured("m", MSG, Verdict, role="judge")
    t = rt.meter.totals
    assert res.completion.usage.estimated and t.estimated_calls == 1
    assert t.estimated_tokens == t.input_tokens + t.output_tokens
    plain = await rt.complete("m", [{"role": "user", "content": MSG[0]["content"] + " "}])
    assert res.completion.usage.input_tokens > plain.usage.input_tokens + 20  # the schema text counts
