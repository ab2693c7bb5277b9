"""A test-only OpenAI-compatible HTTP/1.1 server that injects faults on purpose.

Written on raw ``asyncio.start_server`` rather than uvicorn so it can misbehave the way real
servers and networks do: abort a TCP connection mid-request, answer too late, answer 200 with a
body that is not JSON. Normal answers come from the deterministic :class:`SimulatedLadder`, so a
request that finally succeeds gets the same text however many faults it went through.

A *plan* decides, per request, which :class:`Fault` to apply. It is either a callable taking a
:class:`Arrival` (global request index, per-content index, body, path) and returning a Fault (or
None for a normal answer), or a list of Faults applied to the first requests in arrival order.

The server runs on the event loop of the test that starts it (pytest-asyncio function-scoped
loop), listens on 127.0.0.1 only, on a free port, and records every request it receives.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from autodata.llm.types import canonical_json
from autodata.sim.ladder import FINGERPRINT, LADDER, SimulatedLadder

MAX_HEADER_LINES = 100
MAX_BODY_BYTES = 16 * 1024 * 1024

REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    402: "Payment Required",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


# ---------------------------------------------------------------------------------------------- faults


@dataclass(frozen=True, slots=True)
class Fault:
    """What to do with one request.

    kinds: ``ok`` (normal answer), ``status`` (an error answer with ``status``/``message``/
    ``headers``), ``abort`` (reset the TCP connection without answering), ``slow`` (answer
    normally but only after ``delay`` seconds), ``malformed`` (200 with a body that is not JSON).
    ``reply`` (``status`` with the JSON text ``body``: a server's own shape of answer or error).
    ``delay`` applies to every kind: the server waits that long before acting.
    """

    kind: str = "ok"
    status: int = 200
    message: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    delay: float = 0.0
    body: str = ""  # kind ``reply``: this exact JSON text, with ``status``

    @property
    def label(self) -> str:
        if self.kind == "status":
            extra = "+retry-after" if any(k.lower() == "retry-after" for k, _ in self.headers) else ""
            return f"{self.status}{extra}"
        return self.kind


OK = Fault()
ABORT = Fault("abort")
MALFORMED = Fault("malformed")


def ok(delay: float = 0.0) -> Fault:
    return Fault("ok", delay=delay)


def status(code: int, message: str | None = None, headers: dict[str, str] | None = None, delay: float = 0.0) -> Fault:
    return Fault(
        "status",
        status=code,
        message=message or f"injected HTTP {code}",
        headers=tuple((headers or {}).items()),
        delay=delay,
    )


def rate_limited(retry_after: float | None = None, delay: float = 0.0) -> Fault:
    headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else None
    return status(429, "Rate limit reached: too many requests (injected)", headers, delay)


def reply(payload: Any, code: int = 200, headers: dict[str, str] | None = None) -> Fault:
    """Answer with exactly ``payload`` (any JSON value) and status ``code``."""
    return Fault("reply", status=code, body=json.dumps(payload), headers=tuple((headers or {}).items()))


def completion(message: dict[str, Any] | None, finish_reason: str | None = "stop", **extra: Any) -> dict[str, Any]:
    """A chat-completion body with one choice (``message`` None: a choice without one, as Gemini sends)."""
    choice: dict[str, Any] = {"index": 0, "finish_reason": finish_reason}
    if message is not None:
        choice["message"] = {"role": "assistant", **message}
    choice.update(extra.pop("choice", {}))
    body = {"id": "chatcmpl-x", "object": "chat.completion", "created": 0, "model": "m", "choices": [choice]}
    body.update(extra)
    return body


def slow(seconds: float) -> Fault:
    return Fault("slow", delay=seconds)


def abort(delay: float = 0.0) -> Fault:
    return Fault("abort", delay=delay)


@dataclass(frozen=True, slots=True)
class Arrival:
    """What a plan sees about one request."""

    index: int  # global request counter, 0-based, in arrival order
    content_index: int  # how many earlier requests had the same messages (0 = first time)
    key: str  # canonical JSON of the messages
    prompt: str  # content of the first user message (before any schema instructions)
    body: dict[str, Any]
    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names
    query: str = ""  # the raw query string, without "?"


Plan = Callable[[Arrival], "Fault | None"] | Sequence[Fault] | None


# A server's own treatment of a request that passed the fault plan: (Arrival, the ladder's status and
# payload) -> the status and payload to send. Emulations of real servers (tests/server_zoo.py) are these.
Shape = Callable[[Arrival, int, Any], "tuple[int, Any]"]


@dataclass(slots=True)
class Record:
    """One request as the server saw it."""

    index: int
    content_index: int
    key: str
    prompt: str
    method: str
    path: str
    body: Any
    fault: str  # label of the fault applied ("ok" for a normal answer)
    status: int | None  # status sent, None when nothing was sent (abort, or client gone)
    t_start: float  # time.monotonic() when the request was fully read
    t_end: float | None = None  # when the answer was handed to the socket (None if never)
    answered: bool = False  # a complete answer was written
    query: str = ""  # the raw query string
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names

    @property
    def ok(self) -> bool:
        return self.fault == "ok" and self.status == 200 and self.answered


# ---------------------------------------------------------------------------------------------- server


@dataclass
class FaultServer:
    plan: Plan = None
    latency: float = 0.0  # added before every normal answer
    shape: Shape | None = None  # a server's own quirks, applied to every request the plan lets through
    models: list[dict[str, Any]] | None = None  # what /v1/models lists (default: the simulated ladder)
    ladder: SimulatedLadder = field(default_factory=lambda: SimulatedLadder(global_seed=0, fault_rate=0.0))
    host: str = "127.0.0.1"

    def __post_init__(self) -> None:
        self.records: list[Record] = []
        self.last_headers: dict[str, str] = {}  # of the latest request (lower-case names)
        self.in_flight = 0
        self.peak_in_flight = 0
        self.connections_opened = 0
        self._by_key: Counter[str] = Counter()
        self._server: asyncio.base_events.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    # ---------------------------------------------------------------- lifecycle

    async def start(self) -> FaultServer:
        self._server = await asyncio.start_server(self._handle, self.host, 0, limit=MAX_BODY_BYTES)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is None:
            return
        self._server.close()
        for w in list(self._writers):
            w.transport.abort()
        tasks = [t for t in self._tasks if not t.done()]
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=2.0)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._server.wait_closed(), 2.0)
        self._server = None

    async def __aenter__(self) -> FaultServer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    # ---------------------------------------------------------------- queries for tests

    @property
    def count(self) -> int:
        return len(self.records)

    def chat_records(self) -> list[Record]:
        return [r for r in self.records if r.path.endswith("/chat/completions")]

    def for_prompt(self, prompt: str) -> list[Record]:
        return [r for r in self.records if r.prompt == prompt]

    def faults(self) -> Counter[str]:
        return Counter(r.fault for r in self.records)

    def reset(self) -> None:
        self.records.clear()
        self._by_key.clear()
        self.peak_in_flight = self.in_flight

    # ---------------------------------------------------------------- the plan

    def _decide(self, arrival: Arrival) -> Fault:
        plan = self.plan
        if plan is None:
            return OK
        if callable(plan):
            return plan(arrival) or OK
        return plan[arrival.index] if arrival.index < len(plan) else OK

    # ---------------------------------------------------------------- connection handling

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        self._writers.add(writer)
        self.connections_opened += 1
        try:
            while True:
                request = await _read_request(reader)
                if request is None:
                    return
                method, path, headers, raw = request
                keep = await self._serve_one(method, path, raw, writer, headers)
                if not keep or headers.get("connection", "").lower() == "close":
                    return
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            return
        except asyncio.CancelledError:
            # only stop() cancels us; ending quietly keeps asyncio from logging the cancellation
            writer.transport.abort()
            return
        finally:
            self._writers.discard(writer)
            if task is not None:
                self._tasks.discard(task)
            if not writer.transport.is_closing():
                writer.close()

    async def _serve_one(
        self, method: str, path: str, raw: bytes, writer: asyncio.StreamWriter, headers: dict[str, str] | None = None
    ) -> bool:
        """Answer one request; False when the connection must not be reused."""
        path, _, query = path.partition("?")
        self.last_headers = dict(headers or {})
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = None
        messages = body.get("messages") if isinstance(body, dict) else None
        key = canonical_json(messages) if messages is not None else f"{method} {path}"
        prompt = _first_user_text(messages)
        content_index = self._by_key[key]
        self._by_key[key] += 1
        arrival = Arrival(
            index=len(self.records),
            content_index=content_index,
            key=key,
            prompt=prompt,
            body=body if isinstance(body, dict) else {},
            method=method,
            path=path,
            headers=headers or {},
            query=query,
        )
        is_chat = method == "POST" and path.rstrip("/").endswith("/chat/completions")
        fault = self._decide(arrival) if is_chat else OK
        rec = Record(
            index=arrival.index,
            content_index=content_index,
            key=key,
            prompt=prompt,
            method=method,
            path=path,
            body=body,
            fault=fault.label,
            status=None,
            t_start=time.monotonic(),
            query=query,
            headers=dict(headers or {}),
        )
        self.records.append(rec)
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        counted = True
        try:
            delay = fault.delay + (self.latency if fault.kind == "ok" else 0.0)
            if delay > 0:
                await asyncio.sleep(delay)
            if fault.kind == "abort":
                self.in_flight -= 1
                counted = False
                rec.t_end = time.monotonic()
                writer.transport.abort()
                return False
            if fault.kind == "status":
                code, payload = fault.status, _error(fault.status, fault.message)
                extra = fault.headers
            elif fault.kind == "malformed":
                code, payload, extra = 200, b"<html>upstream hiccup: this is {not json", ()
            elif fault.kind == "reply":
                code, payload, extra = fault.status, fault.body.encode(), fault.headers
            elif is_chat:
                code, payload = self._chat(body)
                extra = ()
                if self.shape is not None:
                    code, payload = self.shape(arrival, code, payload)
                    if isinstance(payload, Fault):  # a shape may also answer with headers
                        code, payload, extra = payload.status, payload.body.encode(), payload.headers
            elif method == "GET" and path.rstrip("/") in ("/v1/models", "/models"):
                code, payload, extra = 200, _models(self.models), ()
                if self.shape is not None:
                    code, payload = self.shape(arrival, code, payload)
            elif method == "GET" and path.rstrip("/") == "/health":
                code, payload, extra = 200, {"status": "ok"}, ()
            else:
                code, payload, extra = 404, _error(404, f"no route for {method} {path}"), ()
            if writer.transport.is_closing():
                return False  # the client gave up (timeout) while we were sleeping
            data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            head = [
                f"HTTP/1.1 {code} {REASONS.get(code, 'Unknown')}",
                "Content-Type: application/json",
                f"Content-Length: {len(data)}",
                "Connection: keep-alive",
                *(f"{k}: {v}" for k, v in extra),
            ]
            rec.status = code
            rec.t_end = time.monotonic()
            # count the request as finished before the client can possibly see the answer, so the
            # server-side in-flight count never exceeds what the client thinks is in flight
            self.in_flight -= 1
            counted = False
            writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + data)
            rec.answered = True
            await writer.drain()
            return True
        finally:
            if counted:
                self.in_flight -= 1

    def _chat(self, body: Any) -> tuple[int, Any]:
        if not isinstance(body, dict):
            return 400, _error(400, "request body must be a JSON object")
        if body.get("stream"):
            return 400, _error(400, "this server does not stream; send stream=false")
        return self.ladder.respond(body)


# ---------------------------------------------------------------------------------------------- HTTP bits


async def _read_request(reader: asyncio.StreamReader) -> tuple[str, str, dict[str, str], bytes] | None:
    """One HTTP/1.1 request (request line, headers, Content-Length or chunked body); None at EOF."""
    line = await reader.readline()
    while line in (b"\r\n", b"\n"):  # tolerate stray blank lines between requests
        line = await reader.readline()
    if not line:
        return None
    parts = line.decode("latin-1").split()
    if len(parts) != 3:
        raise ValueError(f"bad request line {line!r}")
    method, target, _version = parts
    headers: dict[str, str] = {}
    for _ in range(MAX_HEADER_LINES):
        h = await reader.readline()
        if h in (b"\r\n", b"\n"):
            break
        if not h:
            raise ConnectionError("EOF inside headers")
        name, _, value = h.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    else:
        raise ValueError("too many header lines")
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = bytearray()
        for _ in range(100_000):
            size = int((await reader.readline()).split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                    pass
                break
            body += await reader.readexactly(size)
            await reader.readexactly(2)
            if len(body) > MAX_BODY_BYTES:
                raise ValueError("body too large")
        raw = bytes(body)
    else:
        length = int(headers.get("content-length", "0") or 0)
        if length > MAX_BODY_BYTES:
            raise ValueError("body too large")
        raw = await reader.readexactly(length) if length else b""
    return method.upper(), target, headers, raw


def _first_user_text(messages: Any) -> str:
    if isinstance(messages, list):
        for m in messages:
            if isinstance(m, dict) and m.get("role") == "user" and isinstance(m.get("content"), str):
                text: str = m["content"]
                cut = text.find("\n\nAnswer with a single JSON object")
                return text if cut < 0 else text[:cut]
    return ""


def _error(code: int, message: str) -> dict[str, Any]:
    etype = {400: "BadRequestError", 401: "AuthenticationError", 404: "NotFoundError", 429: "RateLimitError"}
    return {"error": {"message": message, "type": etype.get(code, "InternalServerError"), "param": None, "code": code}}


def _models(models: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    if models is None:
        models = [{"id": n, "object": "model", "created": 0, "owned_by": FINGERPRINT} for n in LADDER]
    return {"object": "list", "data": models}


def closed_port(host: str = "127.0.0.1") -> int:
    """A port on ``host`` that nothing listens on (bound, then released)."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])
