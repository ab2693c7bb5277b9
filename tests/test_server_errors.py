"""Server refusals and quirks over the real HTTP path: quotas, refused parameters, Retry-After, schemas
a server refuses or ignores, Azure's URL, header and query. Each test cites the behaviour it emulates
(the emulations live in tests/server_zoo.py)."""

from __future__ import annotations

import base64

import pytest
from pydantic import BaseModel

import server_zoo as zoo
from autodata.config import validate_config
from autodata.errors import ConfigError
from autodata.llm.runtime import ModelRuntime
from autodata.llm.types import CallError
from faultserver import rate_limited, reply

pytestmark = [pytest.mark.timeout(60), pytest.mark.usefixtures("no_proxies")]

MSG = [{"role": "user", "content": "What sets the pace of tidal mooring schedules in the harbour?"}]
# ``serve`` (tests/conftest.py): a fault server and a runtime on it, no proxies in the way


class Verdict(BaseModel):
    ok: bool
    why: str


# ------------------------------------------------------------------------------------------- quota


@pytest.mark.parametrize(
    ("code", "body"),
    [
        # OpenAI: 429 insufficient_quota (platform.openai.com/docs/guides/error-codes; langchain-ai/langchainjs#1929)
        (429, zoo._error(429, "You exceeded your current quota, please check your plan and billing details.",
                         "insufficient_quota", code="insufficient_quota")),
        # OpenRouter: 402 (openrouter.ai/docs/api-reference/errors)
        (402, {"error": {"code": 402, "message": "Insufficient credits. Add more using https://openrouter.ai/credits"}}),
        # Anthropic: 400 "Your credit balance is too low" (docs.anthropic.com/en/api/errors)
        (400, {"type": "error", "error": {"type": "invalid_request_error",
                                           "message": "Your credit balance is too low to access the Anthropic API."}}),
    ],
)  # fmt: skip
async def test_billing_refusals_are_permanent_quota_errors(serve, code, body):
    srv, rt = await serve(plan=lambda a: reply(body, code))
    with pytest.raises(CallError) as info:
        await rt.complete("m", MSG)
    assert info.value.kind == "quota" and not info.value.retryable
    assert srv.count == 1  # never retried
    assert body["error"]["message"][:20] in str(info.value)


async def test_gemini_per_minute_quota_is_still_a_rate_limit(serve):
    """Gemini words its per-minute limit "You exceeded your current quota" too, as a 429 without
    insufficient_quota (ai.google.dev/gemini-api/docs/rate-limits): retried, not a stop."""
    body = [{"error": {"code": 429, "message": "You exceeded your current quota.", "status": "RESOURCE_EXHAUSTED"}}]
    srv, rt = await serve(plan=lambda a: reply(body, 429) if a.index == 0 else None)
    done = await rt.complete("m", MSG)
    assert done.text and srv.count == 2


# ------------------------------------------------------------------------------------------- parameters


async def test_refused_temperature_names_the_config_key(serve):
    """OpenAI reasoning models refuse temperature != 1 (platform.openai.com/docs/guides/reasoning)."""
    srv, rt = await serve(shape=zoo.openai_reasoning, max_tokens_field="max_completion_tokens")
    with pytest.raises(CallError) as info:
        await rt.complete("m", MSG, params={"temperature": 0.7})
    err = info.value
    assert err.kind == "unsupported_param" and srv.count == 1
    assert "models.m.sampling.temperature: null" in str(err)
    assert "loop.weak_temperature" in str(err)


async def test_null_sampling_param_is_never_sent(serve):
    """``sampling: {temperature: null, top_p: null}`` omits them even when a call (a solver) asks."""
    srv, rt = await serve(
        shape=zoo.openai_reasoning,
        max_tokens_field="max_completion_tokens",
        sampling={"temperature": None, "top_p": None, "max_tokens": 200},
    )
    done = await rt.complete("m", MSG, params={"temperature": 0.7, "top_p": 0.9})
    assert done.text and done.usage.reasoning_tokens == 64
    sent = srv.chat_records()[0].body
    assert "temperature" not in sent and "top_p" not in sent and sent["max_completion_tokens"] == 200


async def test_refused_max_tokens_switches_the_field(serve):
    srv, rt = await serve(shape=zoo.openai_reasoning, sampling={"temperature": None, "max_tokens": 50})
    done = await rt.complete("m", MSG)
    assert done.text and srv.count == 2 and "max_completion_tokens" in srv.records[1].body


# ------------------------------------------------------------------------------------------- Retry-After


async def test_retry_after_wait_is_shown(serve):
    srv, rt = await serve(plan=lambda a: rate_limited(1.2) if a.index == 0 else None)
    waits: list[tuple[str, float, str]] = []
    rt.on_wait = lambda ep, s, why: waits.append((ep, s, why))
    done = await rt.complete("m", MSG)
    assert done.text and srv.count == 2
    assert waits and waits[0][0] == "m" and 0.5 < max(w[1] for w in waits) <= 1.3


async def test_retry_after_above_the_cap_fails_for_a_later_retry(serve):
    srv, rt = await serve(plan=lambda a: rate_limited(900), max_retry_after_s=60)
    with pytest.raises(CallError) as info:
        await rt.complete("m", MSG)
    assert srv.count == 1 and info.value.retryable and info.value.kind == "rate_limited"
    assert "models.m.max_retry_after_s" in str(info.value)


# ------------------------------------------------------------------------------------------- schemas


class Nested(BaseModel):
    verdict: Verdict
    note: str | None = None  # anyOf: Gemini refuses it


async def test_a_refused_schema_falls_back_alone(serve):
    """Gemini refuses schema keywords it does not know, with a JSON-list error body (FuzzAnything/PromptFuzz#42):
    that request alone goes in JSON mode; the endpoint keeps json_schema for the others."""
    srv, rt = await serve(shape=zoo.gemini)
    bad = await rt.structured("m", MSG, Nested, role="judge")
    good = await rt.structured("m", MSG, Verdict, role="judge")
    assert isinstance(bad.value, Nested) and isinstance(good.value, Verdict)
    client = rt.endpoint("m")
    assert client.structured_mode == "json_schema" and not client.mode_fallbacks
    assert rt.meter.totals.schema_fallbacks == 1
    kinds = [r.body.get("response_format", {}).get("type") for r in srv.chat_records()]
    assert kinds == ["json_schema", "json_object", "json_schema"]


@pytest.mark.parametrize("shape", [zoo.anthropic_compat, zoo.ollama_ignores_format, zoo.llama_server])
async def test_ignored_json_schema_steps_down_to_json_mode(serve, shape):
    """Anthropic's compatibility layer ignores response_format (docs.anthropic.com/en/api/openai-sdk); so do
    older Ollama (ollama/ollama#10001) and llama-server without a grammar. The re-ask carries the schema, and
    after the second miss the endpoint writes the schema into every prompt (recorded)."""
    srv, rt = await serve(shape=shape)
    prompts = [[{"role": "user", "content": f"Question {i}: is the harbour tidal?"}] for i in range(4)]
    values = [await rt.structured("m", p, Verdict, role="judge") for p in prompts]
    assert all(isinstance(v.value, Verdict) for v in values)
    client = rt.endpoint("m")
    assert client.structured_mode == "json_object" and len(client.mode_fallbacks) == 1
    assert rt.meter.totals.step_downs == 1
    # two calls needed a re-ask; after the step-down every call is answered at once
    assert [len(v.failures) for v in values] == [1, 1, 0, 0]
    assert srv.count == 6


# ------------------------------------------------------------------------------------------- Azure


async def test_azure_classic_deployment_url_with_api_key_header(serve, monkeypatch):
    """Classic Azure URL ``…/openai/deployments/NAME?api-version=…`` and the ``api-key`` header
    (MicrosoftDocs/azure-docs#114602): the query is kept (not mangled), the key comes from the environment."""
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", zoo.AZURE_KEY)
    srv, rt = await serve(
        shape=zoo.azure,
        url_tail="/openai/deployments/dep?api-version=2024-10-21",
        default_headers={"api-key": "${AZURE_OPENAI_API_KEY}"},
    )
    done = await rt.complete("m", MSG)
    assert done.text or done.problem
    rec = srv.chat_records()[0]
    assert rec.path == "/openai/deployments/dep/chat/completions" and rec.query == "api-version=2024-10-21"
    assert "authorization" not in rec.headers


async def test_azure_v1_url_with_default_query(serve, monkeypatch):
    """Azure's v1 URL ``https://NAME.openai.azure.com/openai/v1/`` (learn.microsoft.com azure openai
    api-version-lifecycle) with the key as a bearer token; ``default_query`` for any extra parameter."""
    monkeypatch.setenv("AZ_KEY", "k-123")
    srv, rt = await serve(url_tail="/openai/v1", api_key_env="AZ_KEY", default_query={"api-version": "preview"})
    await rt.complete("m", MSG)
    rec = srv.chat_records()[0]
    assert rec.path == "/openai/v1/chat/completions" and rec.query == "api-version=preview"
    assert srv.last_headers["authorization"] == "Bearer k-123"


async def test_basic_auth_in_the_url(serve):
    srv, _ = await serve()
    url = f"http://user:p%40ss@127.0.0.1:{srv.port}/v1"
    rt2 = ModelRuntime(validate_config({"models": {"m": {"provider": "openai", "model": "sim-weak", "base_url": url}}}))
    try:
        await rt2.complete("m", MSG)
    finally:
        await rt2.aclose()
    assert srv.last_headers["authorization"] == "Basic " + base64.b64encode(b"user:p@ss").decode()


@pytest.mark.parametrize(
    ("endpoint", "key"),
    [
        ({"extra_body": {"api_key": "abc123"}}, "models.m.extra_body.api_key"),
        ({"extra_body": {"provider": {"token": "sk-live-abcdef"}}}, "models.m.extra_body.provider.token"),
        ({"default_headers": {"api-key": "0123456789abcdef"}}, "models.m.default_headers.api-key"),
        ({"default_query": {"key": "AIzaSyA-literal"}}, "models.m.default_query.key"),
        (
            {"base_url": "http://u:p@127.0.0.1:1/v1", "api_key_env": "K"},
            "models.m.base_url.0",
        ),
    ],
)
def test_credentials_in_the_config_are_refused_at_load(endpoint, key):
    with pytest.raises(ConfigError) as info:
        validate_config({"models": {"m": {"provider": "openai", "model": "x", **endpoint}}})
    assert any(d.startswith(key + ":") for d in info.value.details), info.value.details


def test_env_references_are_allowed_and_resolved(monkeypatch):
    cfg = validate_config(
        {"models": {"m": {"provider": "openai", "model": "x", "default_headers": {"api-key": "${AZ}"}}}}
    )
    from autodata.llm.runtime import make_backends

    with pytest.raises(ConfigError) as info:
        make_backends("m", cfg.models["m"], 0)
    assert "models.m.default_headers.api-key: environment variable AZ is not set" in info.value.details
    monkeypatch.setenv("AZ", "v")
    assert make_backends("m", cfg.models["m"], 0)
    assert "${AZ}" in str(cfg.redacted_dump())  # what is stored is the reference, never the value
