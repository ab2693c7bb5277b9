"""Transports that carry one chat-completion body to a server and bring back its JSON.

Everything above this module speaks in :class:`Reply` and :class:`TransportError`; only here do we
know about the ``openai`` package's exception classes or the in-process simulator. Retries, pacing
and caching live above, so both transports get exactly the same treatment.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Protocol

import httpx2 as httpx  # the HTTP library of the openai SDK (3.x)
import openai

from autodata.llm.retry import OVERLOAD_STATUS, RETRYABLE_STATUS, parse_retry_after


@dataclass(slots=True)
class Reply:
    data: dict[str, Any]
    headers: dict[str, str]


class TransportError(Exception):
    """A failed attempt, classified so the caller knows whether to retry, shrink, or rest a replica."""

    def __init__(
        self,
        message: str,
        *,
        kind: str,
        status: int | None = None,
        retryable: bool = False,
        overload: bool = False,
        unhealthy: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind
        self.status = status
        self.retryable = retryable
        self.overload = overload
        self.unhealthy = unhealthy
        self.retry_after = retry_after
        self.param: str | None = None  # the request field a server refused (kind unsupported_param)


class Backend(Protocol):
    label: str

    async def send(self, body: dict[str, Any]) -> Reply: ...

    async def aclose(self) -> None: ...


# Billing and credit refusals: paying again later will not help until someone tops up the account.
# OpenAI: 429 with code ``insufficient_quota`` ("You exceeded your current quota, please check your plan
# and billing details", https://platform.openai.com/docs/guides/error-codes); Anthropic: 400 "Your credit
# balance is too low to access the Anthropic API" (https://docs.anthropic.com/en/api/errors);
# OpenRouter: 402 "Insufficient credits" (https://openrouter.ai/docs/api-reference/errors);
# DeepSeek: 402 "Insufficient Balance" (https://api-docs.deepseek.com/quick_start/error_codes).
_BILLING_WORDS = (
    "insufficient_quota",
    "credit balance",
    "insufficient credits",
    "insufficient balance",
    "more credits",
    "billing",
    "payment required",
    "exceeded your current quota",
)
# Gemini says "You exceeded your current quota" for per-minute limits too (with a retry delay): a 429
# is permanent only with the explicit code.
# The prompt does not fit. vLLM: "This model's maximum context length is …" and "The decoder prompt (length
# N) is longer than the maximum model length of M" (vllm-project/vllm#20409); SGLang: "The input (N tokens) is
# longer than the model's context length (M tokens)" (QwenLM/Qwen3#1321) and "Requested token count exceeds the
# model's maximum context length" (anomalyco/opencode#25230); llama-server: "the request exceeds the available
# context size" (exceed_context_size_error); OpenAI: code context_length_exceeded.
_CONTEXT_WORDS = (
    "context length",
    "context_length",
    "maximum context",
    "maximum model length",
    "max_model_len",
    "context size",
    "context window",
    "too long",
)
_QUOTA_CODES = frozenset({"insufficient_quota", "billing_hard_limit_reached", "billing_not_active"})


def classify_status(
    status: int,
    message: str,
    headers: dict[str, str] | None,
    *,
    code: str | None = None,
    param: str | None = None,
) -> TransportError:
    """Turn an HTTP error answer into a TransportError with the server's own message.

    ``code`` and ``param`` are the error object's fields where the server sends them (OpenAI's
    ``{"error": {"message", "type", "param", "code"}}``).
    """
    low = message.lower()
    codes = (code or "").lower()
    if status == 402 or codes in _QUOTA_CODES or (status in (400, 401, 403) and any(w in low for w in _BILLING_WORDS)):
        return TransportError(message, kind="quota", status=status)
    if status in RETRYABLE_STATUS:
        return TransportError(
            message,
            kind="rate_limited" if status == 429 else ("overloaded" if status in OVERLOAD_STATUS else "server_error"),
            status=status,
            retryable=True,
            overload=status in OVERLOAD_STATUS,
            unhealthy=status >= 500 and status not in {529},
            retry_after=parse_retry_after(headers),
        )
    kind = "bad_request"
    if status in (401, 403):
        kind = "auth"
    elif status == 404:
        kind = "not_found"
    elif any(w in low for w in _CONTEXT_WORDS):
        kind = "context_too_long"
    elif "max_tokens" in low and "max_completion_tokens" in low:
        kind = "unsupported_max_tokens"
    elif _is_schema_error(low, codes):
        kind = "invalid_schema"
    elif "response_format" in low or "json_schema" in low:
        kind = "unsupported_response_format"
    else:
        named = _unsupported_param(low, codes, param)
        if named:
            err = TransportError(message, kind="unsupported_param", status=status)
            err.param = named
            return err
    return TransportError(message, kind=kind, status=status)


def _is_schema_error(low: str, codes: str) -> bool:
    """This request's own schema was refused (the server does support structured output).

    OpenAI strict mode: 400 "Invalid schema for response_format 'X': …" (code ``invalid_json_schema``,
    https://platform.openai.com/docs/guides/structured-outputs#supported-schemas); Gemini: 400
    "Invalid JSON payload received. Unknown name \"additionalProperties\" at
    'generation_config.response_schema…'" (https://ai.google.dev/gemini-api/docs/structured-output).
    """
    return (
        codes == "invalid_json_schema"
        or "invalid schema" in low
        or "response_schema" in low
        or ("schema" in low and "unknown name" in low)
    )


_PARAM_WORDS = ("unsupported parameter", "unsupported value", "not supported with this model", "does not support")
SAMPLING_PARAMS = ("temperature", "top_p", "presence_penalty", "frequency_penalty", "stop", "seed", "max_tokens")


def _unsupported_param(low: str, codes: str, param: str | None) -> str | None:
    """The request field a model refuses, when the error names one.

    OpenAI reasoning models (o-series, gpt-5): 400 "Unsupported parameter: 'top_p' is not supported with
    this model." (code ``unsupported_parameter``) and "Unsupported value: 'temperature' does not support
    0.7 with this model. Only the default (1) value is supported." (code ``unsupported_value``), with
    ``param`` naming the field (https://platform.openai.com/docs/guides/reasoning).
    """
    if codes not in ("unsupported_parameter", "unsupported_value") and not any(w in low for w in _PARAM_WORDS):
        return None
    if param:
        return param
    for name in SAMPLING_PARAMS:
        if f"'{name}'" in low or f'"{name}"' in low or f"`{name}`" in low:
            return name
    return None


def check_reply(data: Any, status: int) -> None:
    """A 200 must be a chat completion, or an ``error`` object a provider sends with status 200
    (OpenRouter: errors after the request was accepted; read into ``Completion.problem`` above).
    Anything else is a server glitch, retried."""
    if isinstance(data, dict) and (data.get("choices") or isinstance(data.get("error"), dict | str)):
        return
    raise TransportError(
        f"server sent JSON without choices: {str(data)[:200]}",
        kind="malformed_response",
        status=status,
        retryable=True,
        unhealthy=True,
    )


def _server_message(body: Any, fallback: str) -> str:
    """The server's own words from an error body.

    Gemini's OpenAI-compatible endpoint sends its error body as a JSON *list* holding one error
    object (``[{"error": {"code": 400, "message": …, "status": "INVALID_ARGUMENT"}}]``,
    https://github.com/googleapis/python-genai/issues/1030, openai/openai-python#1815): unwrapped here.
    """
    if isinstance(body, list) and body:
        return _server_message(body[0], fallback)
    if isinstance(body, str) and body.lstrip().startswith("["):
        try:
            return _server_message(json.loads(body), fallback)
        except ValueError:
            pass
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict):
            msg = err.get("message") or err.get("detail") or err.get("msg")
            if msg:
                return str(msg)
        elif isinstance(err, str):
            return err
        if "detail" in body:
            return str(body["detail"])
    if isinstance(body, str) and body.strip():
        return body.strip()[:500]
    return fallback


def _error_fields(body: Any) -> tuple[str | None, str | None]:
    """(code, param) of an OpenAI-shaped error body (also inside Gemini's list); strings or None."""
    if isinstance(body, list) and body:
        body = body[0]
    err = body.get("error", body) if isinstance(body, dict) else None
    if not isinstance(err, dict):
        return None, None
    code = err.get("code") or err.get("type")
    if isinstance(code, int):  # Gemini: the HTTP status as code, the reason in "status"
        code = err.get("status")
    param = err.get("param")
    return (str(code) if code else None), (str(param) if param else None)


def _root_cause(exc: BaseException) -> BaseException:
    seen = set()
    while exc.__cause__ is not None and id(exc) not in seen:
        seen.add(id(exc))
        exc = exc.__cause__
    return exc


def _is_timeout(root: BaseException) -> bool:
    """Judge by the innermost error: the aiohttp transport reports a dropped connection as a
    ``ConnectTimeout``, which would mislabel resets as timeouts in the summary."""
    return isinstance(root, TimeoutError) or "Timeout" in type(root).__name__


class OpenAIBackend:
    """One replica URL behind one pooled ``openai.AsyncOpenAI`` client (its own retries off).

    Requests go through ``client.post(path, cast_to=Response, body=...)``, the client's documented
    way to send a raw body: auth, base URL, timeouts, connection pooling and the mapping of HTTP
    errors to ``openai`` exceptions stay the official client's, but the per-call re-validation of
    ``messages`` against the SDK's typed signature is skipped. That walk cost about 2 ms of CPU a
    call (see docs/performance.md) and buys nothing here: bodies are built and checked by us.
    The aiohttp transport (the SDK's ``DefaultAioHttpClient``) is the default for the same reason.
    """

    def __init__(
        self,
        base_url: str | None,
        api_key: str | None,
        timeout_s: float,
        label: str,
        *,
        max_connections: int = 64,
        transport: str = "aiohttp",
        default_headers: dict[str, str] | None = None,
        default_query: dict[str, str] | None = None,
    ) -> None:
        self.label = label
        self.base_url = base_url
        # Without a key the SDK's placeholder ``Authorization: Bearer`` is left out of every request: Azure's
        # ``api-key`` header, or a basic-auth URL, must be the only credential sent.
        no_auth = not api_key and not any(k.lower() == "authorization" for k in (default_headers or {}))
        self._options: dict[str, Any] = {"headers": {"Authorization": openai.Omit()}} if no_auth else {}
        limits = httpx.Limits(max_connections=max_connections + 8, max_keepalive_connections=max_connections)
        if transport == "aiohttp":
            http_client: httpx.AsyncClient = openai.DefaultAioHttpClient(limits=limits, timeout=timeout_s)
        else:
            http_client = openai.DefaultAsyncHttpxClient(limits=limits, timeout=timeout_s)
        self.client = openai.AsyncOpenAI(
            api_key=api_key or "not-needed",
            base_url=base_url,
            timeout=timeout_s,
            max_retries=0,
            http_client=http_client,
            default_headers=default_headers or None,
            default_query=default_query or None,
        )

    async def send(self, body: dict[str, Any]) -> Reply:
        try:
            http = await self.client.post(
                "/chat/completions",
                cast_to=httpx.Response,
                body=body,
                options=self._options,  # type: ignore[arg-type]
            )
        except openai.APIStatusError as exc:
            headers = dict(exc.response.headers) if exc.response is not None else {}
            message = _server_message(exc.body, exc.message)
            code, param = _error_fields(exc.body)  # the SDK's ``body`` is the inner error object
            raise classify_status(exc.status_code, message, headers, code=code, param=param) from None
        except openai.APIConnectionError as exc:  # APITimeoutError is a subclass
            root = _root_cause(exc)
            if _is_timeout(root):
                raise TransportError(
                    "no answer within the timeout", kind="timeout", retryable=True, unhealthy=True
                ) from None
            raise TransportError(
                f"connection failed: {type(root).__name__}: {root}".rstrip(": "),
                kind="connection",
                retryable=True,
                unhealthy=True,
            ) from None
        try:
            data = json.loads(await http.aread())
        except (ValueError, UnicodeDecodeError):
            raise TransportError(
                f"server sent a body that is not JSON: {http.content[:120]!r}",
                kind="malformed_response",
                status=http.status_code,
                retryable=True,
                unhealthy=True,
            ) from None
        except httpx.HTTPError as exc:
            raise TransportError(
                f"connection failed while reading the answer: {type(exc).__name__}: {exc}",
                kind="connection",
                retryable=True,
                unhealthy=True,
            ) from None
        check_reply(data, http.status_code)
        return Reply(data=data, headers=dict(http.headers))

    async def aclose(self) -> None:
        await self.client.close()


def proxy_for(url: str) -> str | None:
    """The proxy the environment asks for (HTTP(S)_PROXY, NO_PROXY), resolved once per backend.

    The SDK transports honour these variables; aiohttp's own ``trust_env`` would too, but it looks
    them up again on every request, which cost 0.6 ms of CPU a call in the benchmark.
    """
    import urllib.request
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.hostname and urllib.request.proxy_bypass(parts.hostname):
        return None
    return urllib.request.getproxies().get(parts.scheme)


class DirectBackend:
    """Opt-in (``http_transport: direct``): the same wire protocol over one aiohttp session, no SDK.

    For workloads where the client's CPU is the bottleneck: the SDK path costs about 1.4 ms of CPU a
    call, this one about 0.5 ms (docs/performance.md). Everything above the transport (retries,
    pacing, caching, error classes, server messages, Retry-After) is the same for both.
    """

    DEFAULT_BASE_URL = "https://api.openai.com/v1"

    def __init__(
        self,
        base_url: str | None,
        api_key: str | None,
        timeout_s: float,
        label: str,
        *,
        max_connections: int = 64,
        default_headers: dict[str, str] | None = None,
        default_query: dict[str, str] | None = None,
    ) -> None:
        from urllib.parse import urlencode

        self.label = label
        self.url = (base_url or self.DEFAULT_BASE_URL).rstrip("/") + "/chat/completions"
        if default_query:
            self.url += "?" + urlencode(default_query)
        self.headers = {"Content-Type": "application/json", "Accept": "application/json", "User-Agent": "autodata"}
        if api_key:
            self.headers["Authorization"] = f"Bearer {api_key}"
        self.headers.update(default_headers or {})
        self.timeout_s = timeout_s
        self.max_connections = max_connections
        self.proxy = proxy_for(self.url)
        self._session: Any = None

    def _open(self) -> Any:
        import aiohttp

        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self.max_connections + 8, keepalive_timeout=30),
                timeout=aiohttp.ClientTimeout(total=self.timeout_s),
                headers=self.headers,
            )
        return self._session

    async def send(self, body: dict[str, Any]) -> Reply:
        import aiohttp

        payload = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        try:
            async with self._open().post(self.url, data=payload, proxy=self.proxy) as resp:
                raw = await resp.read()
                status, headers = resp.status, resp.headers  # case-insensitive multidict
        except (TimeoutError, aiohttp.ServerTimeoutError):
            raise TransportError(
                "no answer within the timeout", kind="timeout", retryable=True, unhealthy=True
            ) from None
        except aiohttp.ClientError as exc:
            raise TransportError(
                f"connection failed: {type(exc).__name__}: {exc}", kind="connection", retryable=True, unhealthy=True
            ) from None
        try:
            data = json.loads(raw) if raw else None
        except (ValueError, UnicodeDecodeError):
            data = None
            if status < 400:
                raise TransportError(
                    f"server sent a body that is not JSON: {raw[:120]!r}",
                    kind="malformed_response",
                    status=status,
                    retryable=True,
                    unhealthy=True,
                ) from None
        if status >= 400:
            text = raw.decode("utf-8", "replace") if data is None else data
            code, param = _error_fields(data)
            raise classify_status(
                status,
                _server_message(text, f"HTTP {status}"),
                {k.lower(): v for k, v in headers.items()},
                code=code,
                param=param,
            )
        check_reply(data, status)
        return Reply(data=data, headers=dict(headers))

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
