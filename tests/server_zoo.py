"""Emulations of real inference servers' documented quirks, for ``tests/faultserver.py``.

Each mode is a :data:`faultserver.Shape` (what the server does to a request the fault plan let
through) plus what its ``/v1/models`` lists and the endpoint config a user would write for it. The
answers themselves come from the simulated ladder (a stand-in model); only the server's behaviour is
emulated, after the source cited at each mode. Nothing here knows autodata's prompt wording.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from autodata.sim.ladder import LADDER, SimulatedLadder
from faultserver import Arrival, reply

Shape = Callable[[Arrival, int, Any], tuple[int, Any]]


_MISSES: dict[str, int] = {}


def _coin(arrival: Arrival, salt: str, rate: float) -> bool:
    """A share ``rate`` of requests, chosen by their body (so a run is mostly reproducible), and never
    fewer than one in ``2 / rate`` in a row: a change of prompt wording reshuffles which bodies hit, and
    a 2-document run must still meet the quirk its test asserts (a pure hash gave 0 of ~20 once)."""
    digest = hashlib.sha256((salt + json.dumps(arrival.body, sort_keys=True)).encode()).digest()
    hit = digest[0] / 256.0 < rate or _MISSES.get(salt, 0) + 1 >= 2 / rate
    _MISSES[salt] = 0 if hit else _MISSES.get(salt, 0) + 1
    return hit


def _structured(arrival: Arrival) -> bool:
    return "response_format" in arrival.body


def _choice(payload: Any) -> dict[str, Any]:
    return payload["choices"][0]


def _error(status: int, message: str, etype: str = "BadRequestError", **extra: Any) -> dict[str, Any]:
    return {
        "error": {"message": message, "type": etype, "param": extra.get("param"), "code": extra.get("code", status)}
    }


def _ladder_without_response_format(arrival: Arrival) -> tuple[int, Any]:
    """The model's answer when the server drops ``response_format`` before the model sees it."""
    body = {k: v for k, v in arrival.body.items() if k != "response_format"}
    return SimulatedLadder(global_seed=0, fault_rate=0.0).respond(body)


def _strip_fingerprint(payload: Any) -> Any:
    if isinstance(payload, dict):
        payload["system_fingerprint"] = None
    return payload


@dataclass
class Mode:
    name: str
    source: str
    shape: Shape
    models: list[dict[str, Any]] | None = None
    endpoint: dict[str, Any] = field(default_factory=dict)  # config keys a user sets for this server
    path_prefix: str = "/v1"  # where the OpenAI routes live (Azure: /openai/deployments/NAME)


# ---------------------------------------------------------------------------------------------- vLLM


def vllm_reasoning(a: Arrival, code: int, payload: Any) -> tuple[int, Any]:
    """vLLM with ``--reasoning-parser deepseek_r1``: reasoning in ``reasoning_content`` (and ``reasoning``
    since v0.11), the answer in ``content``; when the token budget is spent thinking, ``content`` is null
    and ``finish_reason`` is length (https://docs.vllm.ai/en/latest/features/reasoning_outputs.html)."""
    if code != 200 or "choices" not in payload:
        return code, payload
    msg = _choice(payload)["message"]
    msg["reasoning_content"] = msg["reasoning"] = "Okay, the user asks about the passage. Let me think step by step."
    if not _structured(a) and _coin(a, "vllm-think", 0.25):
        msg["content"] = None
        _choice(payload)["finish_reason"] = "length"
    return code, _strip_fingerprint(payload)


VLLM_MODELS = [
    {"id": n, "object": "model", "owned_by": "vllm", "root": n, "max_model_len": 32768}
    for n in ("sim-weak", "sim-strong", "sim-judge", "sim-challenger")
]


# ---------------------------------------------------------------------------------------------- SGLang


def sglang_context(a: Arrival, code: int, payload: Any) -> tuple[int, Any]:
    """SGLang's context-length refusal: 400 ``{"object": "error", "message": "The input (N tokens) is longer
    than the model's context length (M tokens).", "type": "BadRequestError", "code": 400}`` (QwenLM/Qwen3#1321)."""
    if code == 400 and "maximum context length" in json.dumps(payload):
        n = sum(len(str(m.get("content", ""))) for m in a.body.get("messages", [])) // 4
        return 400, {
            "object": "error",
            "message": f"The input ({n} tokens) is longer than the model's context length (4096 tokens).",
            "type": "BadRequestError",
            "param": None,
            "code": 400,
        }
    return code, _strip_fingerprint(payload)


def sglang_window(tokens: int) -> Shape:
    """SGLang launched with ``--context-length tokens``: a prompt longer than the window is refused with its
    400 (QwenLM/Qwen3#1321; prompt tokens estimated at 4 characters each)."""

    def shape(a: Arrival, code: int, payload: Any) -> tuple[int, Any]:
        n = sum(len(str(m.get("content", ""))) for m in a.body.get("messages", [])) // 4
        if a.path.endswith("/chat/completions") and n > tokens:
            return 400, {
                "object": "error",
                "message": f"The input ({n} tokens) is longer than the model's context length ({tokens} tokens).",
                "type": "BadRequestError",
                "param": None,
                "code": 400,
            }
        return code, _strip_fingerprint(payload)

    return shape


# ---------------------------------------------------------------------------------------------- Ollama


def ollama_ignores_format(a: Arrival, code: int, payload: Any) -> tuple[int, Any]:
    """Older Ollama (and Ollama Cloud) accept ``response_format: json_schema`` and do not enforce it: the model
    never sees the schema (ollama/ollama#10001; pydantic/pydantic-ai#4160). ``json_object`` is honoured."""
    rf = a.body.get("response_format")
    if isinstance(rf, dict) and rf.get("type") == "json_schema":
        code, payload = _ladder_without_response_format(a)
    return code, _strip_fingerprint(payload)


OLLAMA_MODELS = [
    {"id": n, "object": "model", "owned_by": "library"}
    for n in ("sim-weak", "sim-strong", "sim-judge", "sim-challenger")
]


# ---------------------------------------------------------------------------------------------- llama-server


def llama_server(a: Arrival, code: int, payload: Any) -> tuple[int, Any]:
    """llama.cpp's llama-server started without a grammar for ``json_schema`` (and without ``--jinja``): the
    schema is not enforced; it serves one model whatever ``model`` says, and sends no ``system_fingerprint``
    of ours (https://github.com/ggml-org/llama.cpp/tree/master/tools/server)."""
    rf = a.body.get("response_format")
    if isinstance(rf, dict) and rf.get("type") == "json_schema":
        code, payload = _ladder_without_response_format(a)
    return code, _strip_fingerprint(payload)


def serves_one_model(model: str) -> Shape:
    """A server that answers every request with its one loaded model whatever ``model`` the request names
    (llama-server; vLLM with ``--served-model-name local``): here the ladder's ``model``."""

    def shape(a: Arrival, code: int, payload: Any) -> tuple[int, Any]:
        if a.path.endswith("/chat/completions"):
            code, payload = SimulatedLadder(global_seed=0, fault_rate=0.0).respond({**a.body, "model": model})
        return code, _strip_fingerprint(payload)

    return shape


# llama-server lists the one model it loaded (its path or --alias) and answers whatever ``model`` a request names
LLAMA_MODELS = [{"id": "qwen2.5-7b-instruct-q4_k_m.gguf", "object": "model", "owned_by": "llamacpp"}]


# ---------------------------------------------------------------------------------------------- OpenAI reasoning


def openai_reasoning(a: Arrival, code: int, payload: Any) -> tuple[int, Any]:
    """OpenAI o-series / gpt-5: ``temperature`` other than 1 and ``top_p`` are refused with 400
    ``unsupported_value`` / ``unsupported_parameter`` naming ``param``; ``max_tokens`` is refused in favour of
    ``max_completion_tokens`` (https://platform.openai.com/docs/guides/reasoning; cline/cline#341)."""
    body = a.body
    if "max_tokens" in body:
        return 400, _error(
            400,
            "Unsupported parameter: 'max_tokens' is not supported with this model. "
            "Use 'max_completion_tokens' instead.",
            "invalid_request_error",
            param="max_tokens",
            code="unsupported_parameter",
        )
    if "top_p" in body:
        return 400, _error(
            400,
            "Unsupported parameter: 'top_p' is not supported with this model.",
            "invalid_request_error",
            param="top_p",
            code="unsupported_parameter",
        )
    if body.get("temperature") not in (None, 1):
        return 400, _error(
            400,
            f"Unsupported value: 'temperature' does not support {body['temperature']} with this model. "
            "Only the default (1) value is supported.",
            "invalid_request_error",
            param="temperature",
            code="unsupported_value",
        )
    if code == 200 and isinstance(payload, dict):
        usage = payload.setdefault("usage", {})
        usage["completion_tokens_details"] = {"reasoning_tokens": 64}
    return code, _strip_fingerprint(payload)


# ---------------------------------------------------------------------------------------------- Anthropic


def anthropic_compat(a: Arrival, code: int, payload: Any) -> tuple[int, Any]:
    """Anthropic's OpenAI SDK compatibility layer: ``response_format`` and ``seed`` are ignored, temperature is
    capped at 1 (https://docs.anthropic.com/en/api/openai-sdk, "Important OpenAI compatibility limitations")."""
    code, payload = _ladder_without_response_format(a) if "response_format" in a.body else (code, payload)
    return code, _strip_fingerprint(payload)


# ---------------------------------------------------------------------------------------------- Gemini


def gemini(a: Arrival, code: int, payload: Any) -> tuple[int, Any]:
    """Gemini's OpenAI-compatible endpoint: error bodies are a JSON list, schema keywords it does not know are
    refused ("Invalid JSON payload received. Unknown name …", FuzzAnything/PromptFuzz#42; simonw/llm-gemini#49),
    and now and then a choice comes without ``message`` (FuzzAnything/PromptFuzz#42, langroid/langroid#705)."""
    rf = a.body.get("response_format")
    if isinstance(rf, dict) and rf.get("type") == "json_schema":
        text = json.dumps((rf.get("json_schema") or {}).get("schema") or {})
        for word in ("additionalProperties", "$defs", "anyOf"):
            if word in text:
                msg = f"Invalid JSON payload received. Unknown name \"{word}\" at 'generation_config.response_schema'"
                return 400, [{"error": {"code": 400, "message": msg, "status": "INVALID_ARGUMENT"}}]
    if code == 200 and not _structured(a) and _coin(a, "gemini-nomsg", 0.2):
        del _choice(payload)["message"]
    return code, _strip_fingerprint(payload)


# ---------------------------------------------------------------------------------------------- OpenRouter


def openrouter(a: Arrival, code: int, payload: Any) -> tuple[int, Any]:
    """OpenRouter: an upstream failure after the request was accepted comes as ``finish_reason: error`` with
    an ``error`` inside the choice, or as HTTP 200 with an ``error`` and no ``choices``
    (https://openrouter.ai/docs/api-reference/errors; pydantic/pydantic-ai#2844)."""
    if code == 200 and _coin(a, "or-error", 0.15):
        if _coin(a, "or-kind", 0.5):
            return 200, {"error": {"code": 502, "message": "Provider returned error", "metadata": {"raw": "upstream"}}}
        c = _choice(payload)
        c["finish_reason"] = "error"
        c["error"] = {"code": 502, "message": "Upstream provider disconnected"}
        c["message"]["content"] = c["message"]["content"][:20]
    return code, _strip_fingerprint(payload)


# ---------------------------------------------------------------------------------------------- Azure

AZURE_KEY = "azure-test-key-123"


def azure(a: Arrival, code: int, payload: Any) -> tuple[int, Any]:
    """Azure OpenAI, classic deployment URL ``/openai/deployments/NAME/chat/completions?api-version=…`` with the
    key in an ``api-key`` header (MicrosoftDocs/azure-docs#114602); a filtered completion has
    ``finish_reason: content_filter`` and ``content: null``
    (https://learn.microsoft.com/en-us/azure/ai-services/openai/concepts/content-filter)."""
    if "api-version=" not in a.query:
        return 404, _error(404, "Resource not found", "NotFoundError")
    if a.headers.get("api-key") != AZURE_KEY:
        return 401, _error(
            401,
            "Access denied due to invalid subscription key or wrong API endpoint.",
            "AuthenticationError",
            code="401",
        )
    if code == 200 and not _structured(a) and _coin(a, "azure-filter", 0.15):
        c = _choice(payload)
        c["finish_reason"] = "content_filter"
        c["message"]["content"] = None
    return code, _strip_fingerprint(payload)


# ---------------------------------------------------------------------------------------------- transient

# The reply without an answer each server above sends, as (finish_reason, message) for a plain completion.
NO_ANSWER_REPLIES: dict[str, tuple[str, dict[str, Any]]] = {
    "content_filter": ("content_filter", {"content": None}),  # Azure, see ``azure``
    "reasoning_only": ("length", {"content": None, "reasoning_content": "Let me think about the passage first."}),
    "unclosed_think": ("length", {"content": "<think>Let me think about the passage first."}),  # no reasoning parser
    "empty": ("stop", {"content": ""}),
}


class Outage:
    """A server whose model gives no answer (one of :data:`NO_ANSWER_REPLIES`) to every plain completion request
    until :meth:`end` is called, then answers: the transient kind of the replies above (an upstream outage
    behind a gateway, a content-filter incident, thinking that ran past the budget under load). Structured
    requests are answered throughout. One instance per server."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.over = False
        self.sent = 0  # replies without an answer sent

    def end(self) -> None:
        self.over = True

    def __call__(self, a: Arrival, code: int, payload: Any) -> tuple[int, Any]:
        if code == 200 and not _structured(a) and not self.over:
            self.sent += 1
            finish, message = NO_ANSWER_REPLIES[self.kind]
            c = _choice(payload)
            c["finish_reason"] = finish
            c["message"] = {"role": "assistant", **message}
        return code, _strip_fingerprint(payload)


def sometimes_no_answer(kind: str, rate: float = 0.3) -> Shape:
    """No answer (:data:`NO_ANSWER_REPLIES`) to a share ``rate`` of plain completion requests, chosen by a hash
    of the whole body (seed included): the same request always gets the same reply, as on a server that
    honours ``seed`` with a deterministic model."""

    def shape(a: Arrival, code: int, payload: Any) -> tuple[int, Any]:
        digest = hashlib.sha256((kind + json.dumps(a.body, sort_keys=True)).encode()).digest()
        if code == 200 and not _structured(a) and digest[0] / 256.0 < rate:
            finish, message = NO_ANSWER_REPLIES[kind]
            c = _choice(payload)
            c["finish_reason"] = finish
            c["message"] = {"role": "assistant", **message}
        return code, _strip_fingerprint(payload)

    return shape


# ---------------------------------------------------------------------------------------------- serve-sim


def serve_sim(a: Arrival, code: int, payload: Any) -> tuple[int, Any]:
    """``autodata serve-sim`` reached through ``provider: openai``: every reply says
    ``system_fingerprint: autodata-simulated``."""
    return code, payload


def quota(a: Arrival, code: int, payload: Any) -> tuple[int, Any]:
    """OpenAI out of credit: 429 with code ``insufficient_quota`` (https://platform.openai.com/docs/guides/error-codes;
    langchain-ai/langchainjs#1929)."""
    return 429, _error(
        429,
        "You exceeded your current quota, please check your plan and billing details.",
        "insufficient_quota",
        code="insufficient_quota",
    )


MODES: dict[str, Mode] = {
    m.name: m
    for m in [
        Mode("vllm-reasoning", "docs.vllm.ai features/reasoning_outputs", vllm_reasoning, models=VLLM_MODELS),
        Mode(
            "vllm-small-window",
            "docs.vllm.ai features/reasoning_outputs; --max-model-len 2048",
            vllm_reasoning,
            models=[dict(m, max_model_len=2048) for m in VLLM_MODELS],
        ),
        Mode("sglang", "QwenLM/Qwen3#1321", sglang_context),
        Mode("sglang-small-window", "QwenLM/Qwen3#1321 (--context-length 2500)", sglang_window(2500)),
        Mode("ollama", "ollama/ollama#10001", ollama_ignores_format, models=OLLAMA_MODELS),
        Mode("llama-server", "ggml-org/llama.cpp tools/server", llama_server, models=LLAMA_MODELS),
        Mode(
            "openai-reasoning",
            "platform.openai.com/docs/guides/reasoning",
            openai_reasoning,
            endpoint={"sampling": {"temperature": None}},
        ),
        Mode(  # the same server, configured without ``temperature: null``: stopped with the key to set
            "openai-reasoning-unfixed", "platform.openai.com/docs/guides/reasoning", openai_reasoning
        ),
        Mode("anthropic", "docs.anthropic.com/en/api/openai-sdk", anthropic_compat),
        Mode("gemini", "FuzzAnything/PromptFuzz#42", gemini),
        Mode("openrouter", "openrouter.ai/docs/api-reference/errors", openrouter),
        Mode(
            "azure",
            "learn.microsoft.com azure openai content-filter; MicrosoftDocs/azure-docs#114602",
            azure,
            endpoint={"default_headers": {"api-key": "${AZURE_OPENAI_API_KEY}"}},
            path_prefix="/openai/deployments/dep",
        ),
        Mode("serve-sim", "autodata serve-sim", serve_sim),
        Mode("quota", "langchain-ai/langchainjs#1929", quota),
    ]
}

ALL_MODELS = list(LADDER)


def error_reply(status: int, message: str, **extra: Any):
    """A fault answering with an OpenAI-shaped error body."""
    return reply(_error(status, message, **extra), status)
