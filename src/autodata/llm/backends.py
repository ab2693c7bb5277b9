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


class Backend(Protocol):
    label: str

    async def send(self, body: dict[str, Any]) -> Reply: ...

    async def aclose(self) -> None: ...


def classify_status(status: int, message: str, headers: dict[str, str] | None) -> TransportError:
    """Turn an HTTP error answer into a TransportError with the server's own message."""
    low = message.lower()
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
    elif "context length" in low or "context_length" in low or "maximum context" in low or "too long" in low:
        kind = "context_too_long"
    elif "response_format" in low or "json_schema" in low:
        kind = "unsupported_response_format"
    elif "max_tokens" in low and "max_completion_tokens" in low:
        kind = "unsupported_max_tokens"
    return TransportError(message, kind=kind, status=status)


def server_message(body: Any, fallback: str) -> str:
    """The error message of a server's error body (OpenAI `{"error": {"message": ...}}` and kin), else ``fallback``."""
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
    ) -> None:
        self.label = label
        self.base_url = base_url
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
        )

    async def send(self, body: dict[str, Any]) -> Reply:
        try:
            http = await self.client.post("/chat/completions", cast_to=httpx.Response, body=body)
        except openai.APIStatusError as exc:
            headers = dict(exc.response.headers) if exc.response is not None else {}
            message = server_message(exc.body, exc.message)
            raise classify_status(exc.status_code, message, headers) from None
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
        if not isinstance(data, dict) or not data.get("choices"):
            raise TransportError(
                f"server sent JSON without choices: {str(data)[:200]}",
                kind="malformed_response",
                status=http.status_code,
                retryable=True,
                unhealthy=True,
            )
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
        self, base_url: str | None, api_key: str | None, timeout_s: float, label: str, *, max_connections: int = 64
    ) -> None:
        self.label = label
        self.url = (base_url or self.DEFAULT_BASE_URL).rstrip("/") + "/chat/completions"
        self.headers = {"Content-Type": "application/json", "Accept": "application/json", "User-Agent": "autodata"}
        if api_key:
            self.headers["Authorization"] = f"Bearer {api_key}"
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
            raise classify_status(
                status, server_message(text, f"HTTP {status}"), {k.lower(): v for k, v in headers.items()}
            )
        if not isinstance(data, dict) or not data.get("choices"):
            raise TransportError(
                f"server sent JSON without choices: {str(data)[:200]}",
                kind="malformed_response",
                status=status,
                retryable=True,
                unhealthy=True,
            )
        return Reply(data=data, headers=dict(headers))

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
