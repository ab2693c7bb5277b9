"""EndpointClient details with a scripted backend: request spelling, fallbacks, reply parsing."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from autodata.config import validate_config
from autodata.llm.backends import Reply, TransportError, classify_status
from autodata.llm.runtime import ModelRuntime

MSG = [{"role": "user", "content": "Summarise PEP 380."}]


class Scripted:
    """Answers from a function of the request body; records every body it was sent."""

    def __init__(self, answer) -> None:
        self.label = "scripted"
        self.bodies: list[dict[str, Any]] = []
        self.answer = answer

    async def send(self, body: dict[str, Any]) -> Reply:
        self.bodies.append(body)
        return Reply(data=self.answer(body), headers={})

    async def aclose(self) -> None:
        return None


def reply(content: str, **message: Any) -> dict[str, Any]:
    return {
        "model": "m",
        "choices": [{"message": {"content": content, **message}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 30, "completion_tokens_details": {"reasoning_tokens": 20}},
    }


def runtime(backend, **ep) -> ModelRuntime:
    cfg = validate_config(
        {
            "seed": 5,
            "models": {"m": {"provider": "openai", "model": "served-name", "base_url": "http://127.0.0.1:9/v1", **ep}},
        }
    )
    return ModelRuntime(cfg, backends={"m": [backend]})


async def test_body_carries_sampling_seed_and_extra_fields():
    b = Scripted(lambda body: reply("hi"))
    rt = runtime(
        b,
        sampling={"temperature": 0.6, "max_tokens": 64},
        extra_body={"chat_template_kwargs": {"enable_thinking": False}, "top_k": 20},
    )
    await rt.complete("m", MSG, params={"temperature": 0.9}, sample=2)
    body = b.bodies[0]
    assert body["model"] == "served-name"
    assert body["temperature"] == 0.9 and body["max_tokens"] == 64
    assert body["chat_template_kwargs"] == {"enable_thinking": False} and body["top_k"] == 20
    from autodata.llm.types import derive_seed

    assert body["seed"] == derive_seed(5, 2)
    assert "response_format" not in body


async def test_reasoning_content_and_reasoning_tokens_are_kept():
    rt = runtime(Scripted(lambda body: reply("the answer", reasoning_content="step by step")))
    c = await rt.complete("m", MSG)
    assert c.text == "the answer" and c.reasoning == "step by step"
    assert c.usage.reasoning_tokens == 20 and c.usage.output_tokens == 30
    rt = runtime(Scripted(lambda body: reply("the answer", reasoning="via reasoning field")))
    assert (await rt.complete("m", MSG)).reasoning == "via reasoning field"


async def test_think_block_split_when_server_has_no_reasoning_parser():
    rt = runtime(Scripted(lambda body: reply("<think>hmm, 2+2</think>\n\n4")))
    c = await rt.complete("m", MSG)
    assert c.text == "4" and c.reasoning == "hmm, 2+2"


async def test_missing_usage_is_estimated_not_zero():
    rt = runtime(Scripted(lambda body: {"choices": [{"message": {"content": "x" * 400}, "finish_reason": "stop"}]}))
    c = await rt.complete("m", MSG)
    assert c.usage.output_tokens == 100 and c.usage.input_tokens > 0


async def test_max_completion_tokens_configured_and_switched_on_demand():
    b = Scripted(lambda body: reply("ok"))
    rt = runtime(b, max_tokens_field="max_completion_tokens", sampling={"max_tokens": 50})
    await rt.complete("m", MSG)
    assert b.bodies[0]["max_completion_tokens"] == 50 and "max_tokens" not in b.bodies[0]

    class Picky(Scripted):
        async def send(self, body):
            self.bodies.append(body)
            if "max_tokens" in body:
                raise classify_status(
                    400,
                    "Unsupported parameter: 'max_tokens' is not supported with this "
                    "model. Use 'max_completion_tokens' instead.",
                    None,
                )
            return Reply(data=reply("ok"), headers={})

    p = Picky(None)
    rt = runtime(p, sampling={"max_tokens": 50})
    assert (await rt.complete("m", MSG)).text == "ok"
    assert (await rt.complete("m", MSG, sample=1)).text == "ok"
    assert [("max_tokens" in b, "max_completion_tokens" in b) for b in p.bodies] == [
        (True, False),
        (False, True),
        (False, True),
    ]  # switched once, remembered
    assert rt.meter.totals.retries == 0 and rt.meter.totals.failures == 0


class Pick(BaseModel):
    choice: int


async def test_structured_modes_spell_the_request_differently():
    for mode, has_rf, rf_type, instructed in [
        ("json_schema", True, "json_schema", False),
        ("json_object", True, "json_object", True),
        ("text", False, None, True),
    ]:
        b = Scripted(lambda body: reply('{"choice": 2}'))
        rt = runtime(b, structured_output=mode)
        res = await rt.structured("m", MSG, Pick)
        assert res.value.choice == 2 and res.mode == mode
        body = b.bodies[0]
        assert ("response_format" in body) == has_rf
        if has_rf:
            assert body["response_format"]["type"] == rf_type
        assert ("must satisfy this JSON Schema" in body["messages"][-1]["content"]) == instructed


@pytest.mark.parametrize(
    ("status", "message", "kind", "retryable"),
    [
        (429, "slow down", "rate_limited", True),
        (503, "overloaded", "overloaded", True),
        (500, "boom", "server_error", True),
        (400, "This model's maximum context length is 8192 tokens", "context_too_long", False),
        (400, "response_format json_schema is not supported", "unsupported_response_format", False),
        (401, "invalid api key", "auth", False),
        (404, "model not found", "not_found", False),
        (422, "bad field", "bad_request", False),
    ],
)
def test_status_classification(status, message, kind, retryable):
    err = classify_status(status, message, {"retry-after": "3"})
    assert isinstance(err, TransportError)
    assert (err.kind, err.retryable) == (kind, retryable)
    assert err.message == message
    assert err.retry_after == (3.0 if retryable else None) or not retryable


def test_direct_transport_resolves_proxy_variables_once(monkeypatch):
    from autodata.llm.backends import DirectBackend, proxy_for

    for var in ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy"):
        monkeypatch.delenv(var, raising=False)
    assert proxy_for("http://gpu1:8000/v1/chat/completions") is None
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.local:3128")
    monkeypatch.setenv("NO_PROXY", "gpu2")
    assert proxy_for("http://gpu1:8000/v1/chat/completions") == "http://proxy.local:3128"
    assert proxy_for("http://gpu2:8000/v1/chat/completions") is None
    assert DirectBackend("http://gpu1:8000/v1", None, 5, "x").proxy == "http://proxy.local:3128"


@pytest.mark.parametrize(
    "bad",
    [
        {"choices": [None]},
        {"choices": [{"message": {"content": 42}, "finish_reason": "stop"}]},
        {"choices": [{"message": {"content": "x"}}], "usage": {"prompt_tokens": "many"}},
    ],
)
async def test_malformed_completion_shapes_are_retried(bad):
    answers = [bad, reply("fine")]

    class Flaky(Scripted):
        async def send(self, body):
            self.bodies.append(body)
            return Reply(data=answers.pop(0), headers={})

    b = Flaky(None)
    rt = runtime(b, backoff_base_s=0.0)
    assert (await rt.complete("m", MSG)).text == "fine"
    assert len(b.bodies) == 2 and rt.meter.totals.errors == {"malformed_response": 1}


async def test_content_parts_are_joined():
    rt = runtime(Scripted(lambda body: reply([{"type": "text", "text": "a"}, {"type": "text", "text": "b"}])))
    assert (await rt.complete("m", MSG)).text == "ab"
