"""One named endpoint: replicas, pacing, retries, and the server-specific spelling of a request.

A call goes: RPM bucket -> TPM bucket -> adaptive window -> replica (fewest in flight, not rested,
not paused by Retry-After) -> transport. Failures are classified once (in ``backends``) and handled
here: retryable ones back off and try again, preferably on another replica; ones retrying cannot
fix (bad request, context too long, auth) fail at once with the server's own message.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections.abc import Callable, Sequence
from typing import Any

from autodata.config import Endpoint
from autodata.llm.backends import Backend, Reply, TransportError
from autodata.llm.limits import AdaptiveWindow, TokenBucket
from autodata.llm.replies import read_reply
from autodata.llm.retry import backoff_delay
from autodata.llm.structured import instruction_text
from autodata.llm.tokens import estimate_messages, estimate_tokens
from autodata.llm.types import CallError, Completion, LogicalRequest, Usage, canonical_json
from autodata.llm.usage import UsageMeter

DEFAULT_OUTPUT_ESTIMATE = 512
SIM_FINGERPRINT = "autodata-simulated"  # what serve-sim (and the in-process simulator) put in every reply
SAMPLING_FIELDS = ("temperature", "top_p", "max_tokens", "stop", "presence_penalty", "frequency_penalty", "seed")

# (endpoint name, seconds, why): a wait the user should see (Retry-After, backoff)
WaitHook = Callable[[str, float, str], None]
STRUCTURED_MODES = ("json_schema", "json_object", "text")


class Replica:
    """One base URL of an endpoint, with the health state the balancer needs."""

    __slots__ = (
        "backend",
        "consecutive_failures",
        "in_flight",
        "paused_until",
        "rest_s",
        "rested_until",
        "served",
        "times_rested",
    )

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.in_flight = 0
        self.consecutive_failures = 0
        self.rested_until = 0.0
        self.rest_s = 0.0
        self.paused_until = 0.0
        self.served = 0
        self.times_rested = 0

    @property
    def label(self) -> str:
        return self.backend.label


class ReplicaPool:
    """Client-side balancing: fewest requests in flight; a replica that keeps failing is rested.

    After ``fail_threshold`` unhealthy failures in a row a replica rests for ``rest_s`` (doubling
    each time, up to ``rest_max_s``); when the rest is over it gets traffic again and one success
    clears its record. If every replica is resting, the one that wakes soonest is tried anyway.
    """

    def __init__(
        self, backends: Sequence[Backend], fail_threshold: int = 3, rest_s: float = 1.0, rest_max_s: float = 60.0
    ) -> None:
        self.replicas = [Replica(b) for b in backends]
        self.fail_threshold = fail_threshold
        self.base_rest_s = rest_s
        self.rest_max_s = rest_max_s
        self._rr = itertools.count()

    def pick(self, avoid: Replica | None = None) -> Replica:
        if len(self.replicas) == 1:
            return self.replicas[0]
        now = time.monotonic()
        awake = [r for r in self.replicas if r.rested_until <= now]
        if not awake:
            return min(self.replicas, key=lambda r: r.rested_until)
        if avoid is not None and len(awake) > 1:
            awake = [r for r in awake if r is not avoid] or awake
        ready = [r for r in awake if r.paused_until <= now] or awake
        low = min(r.in_flight for r in ready)
        best = [r for r in ready if r.in_flight == low]
        return best[next(self._rr) % len(best)]

    def on_success(self, r: Replica) -> None:
        r.served += 1
        if r.consecutive_failures:
            r.consecutive_failures = 0
            r.rest_s = 0.0

    def on_failure(self, r: Replica, unhealthy: bool) -> None:
        if not unhealthy:
            return
        r.consecutive_failures += 1
        if r.consecutive_failures >= self.fail_threshold and len(self.replicas) > 1:
            r.rest_s = min(self.rest_max_s, r.rest_s * 2 if r.rest_s else self.base_rest_s)
            r.rested_until = time.monotonic() + r.rest_s
            r.consecutive_failures = 0
            r.times_rested += 1


class EndpointClient:
    def __init__(
        self,
        name: str,
        cfg: Endpoint,
        backends: Sequence[Backend],
        meter: UsageMeter,
        *,
        rng: random.Random | None = None,
    ) -> None:
        self.name = name
        self.cfg = cfg
        self.meter = meter
        self.pool = ReplicaPool(backends)
        self.window = AdaptiveWindow(cfg.max_concurrency, cfg.min_concurrency)
        self.rpm = TokenBucket(cfg.rpm) if cfg.rpm else None
        self.tpm = TokenBucket(cfg.tpm) if cfg.tpm else None
        self.structured_mode: str = cfg.structured_output
        self.max_tokens_field: str = cfg.max_tokens_field
        self._rng = rng or random.Random()
        self.mode_fallbacks: list[str] = []
        # computed once: the runtime overlays these on every call
        self.sampling_defaults = {k: v for k, v in cfg.sampling.model_dump().items() if v is not None}
        self.extra_body = dict(cfg.extra_body)
        self.namespace = ""  # extra cache-key material (the simulator's version and settings)
        # sampling fields written as ``null`` in the config: never sent, even when a call asks for them
        # (OpenAI reasoning models refuse temperature and top_p)
        self.omit = frozenset(
            k for k in cfg.sampling.model_fields_set if getattr(cfg.sampling, k) is None and k in SAMPLING_FIELDS
        )
        self.on_wait: WaitHook | None = None  # told about waits of a second or more (progress line)
        self.identity = ""  # cache-key material telling this endpoint's servers apart (runtime sets it)
        self.simulated_seen = cfg.provider == "simulated"
        self.schema_misses = 0  # structured calls whose first answer held no JSON (json_schema ignored?)
        self.refused_schemas: set[str] = set()  # schemas this server refused (those requests go in JSON mode)

    def note_fingerprint(self, fingerprint: str | None) -> None:
        """A reply's ``system_fingerprint``: ``autodata-simulated`` marks the endpoint as simulated."""
        if fingerprint == SIM_FINGERPRINT:
            self.simulated_seen = True

    # ------------------------------------------------------------------ wire format

    def build_body(self, req: LogicalRequest, mode: str | None = None) -> dict[str, Any]:
        """The wire body of ``req`` in this endpoint's spelling (``mode``: a structured mode for this
        request alone, after the server refused this request's own schema)."""
        messages = list(req.messages)
        body: dict[str, Any] = {"model": req.model}
        for key, value in req.params.items():
            if value is None or key in self.omit:
                continue
            if key == "max_tokens":
                body[self.max_tokens_field] = value
            else:
                body[key] = value
        if req.schema is not None or req.json_mode:
            mode = mode or self.structured_mode
            if mode == "json_schema" and req.schema is not None:
                body["response_format"] = {
                    "type": "json_schema",
                    "json_schema": {"name": req.schema.name, "schema": req.schema.schema, "strict": req.schema.strict},
                }
            else:
                if mode in ("json_schema", "json_object"):
                    body["response_format"] = {"type": "json_object"}
                messages = _with_instructions(messages, instruction_text(req.schema))
        body["messages"] = messages
        if req.extra_body:
            body.update(req.extra_body)
        return body

    def step_down(self, reason: str, role: str) -> bool:
        """The server accepts ``json_schema`` but does not enforce it (the model never sees the schema:
        Anthropic's OpenAI-compatible layer, older Ollama, llama-server without a grammar): from now on
        ask in ``json_object`` mode with the schema written into the prompt. True when the mode changed."""
        if self.structured_mode != "json_schema":
            return False
        self.mode_fallbacks.append(f"json_schema -> json_object: {reason[:200]}")
        self.structured_mode = "json_object"
        self.meter.record_step_down(self.name, role)
        return True

    def _wait(self, seconds: float, why: str) -> None:
        if self.on_wait is not None and seconds >= 1.0:
            self.on_wait(self.name, seconds, why)

    # ------------------------------------------------------------------ the call

    async def call(self, req: LogicalRequest, role: str, *, all_choices: bool = False) -> Completion:
        """Make one request (with retries); raises CallError when it finally fails.

        ``all_choices``: the reply's choices after the first (a request with ``n`` > 1) come back as the
        completion's ``siblings``, each with the reply's usage (the request's, counted once by the meter).
        """
        estimate = estimate_messages(req.messages) + int(req.params.get("max_tokens") or DEFAULT_OUTPUT_ESTIMATE)
        retries = 0
        last: Replica | None = None
        started = time.monotonic()
        # this request's structured mode, after its own schema was refused (now or by an earlier request)
        own_mode: str | None = None
        if req.schema is not None and self.refused_schemas and _schema_id(req) in self.refused_schemas:
            own_mode = "json_object" if self.structured_mode in ("json_schema", "json_object") else "text"
        while True:
            body = self.build_body(req, own_mode)
            spelling = (own_mode or self.structured_mode, self.max_tokens_field)  # what this body was built with
            if self.rpm:
                await self.rpm.acquire(1)
            if self.tpm:
                await self.tpm.acquire(estimate)
            epoch = await self.window.acquire()
            replica = self.pool.pick(avoid=last)
            try:
                pause = replica.paused_until - time.monotonic()
                if pause > 0:
                    self._wait(pause, f"{replica.label} asked to wait (Retry-After)")
                    await asyncio.sleep(pause)
                replica.in_flight += 1
                try:
                    reply = await replica.backend.send(body)
                finally:
                    replica.in_flight -= 1
                try:
                    completion = self._completion(reply, req, retries + 1, time.monotonic() - started)
                    if all_choices:
                        completion.siblings = [
                            self._completion(Reply({**reply.data, "choices": [c]}, reply.headers), req, retries + 1,
                                             completion.latency_s)
                            for c in reply.data["choices"][1:]
                        ]  # fmt: skip
                except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
                    # a 200 whose JSON is not a chat completion: a server glitch, retried like one
                    raise TransportError(
                        f"answer is not a chat completion: {exc!r}",
                        kind="malformed_response",
                        retryable=True,
                        unhealthy=True,
                    ) from None
            except TransportError as err:
                self.window.release()
                if self.tpm:
                    self.tpm.adjust(-estimate)  # nothing was generated
                self.pool.on_failure(replica, err.unhealthy)
                if err.overload:
                    self.window.on_overload(epoch)
                if err.kind == "invalid_schema" and req.schema is not None and own_mode is None:
                    # this request's own schema was refused: it alone falls back, the endpoint keeps json_schema
                    # (and requests with the same schema go in JSON mode at once from now on)
                    own_mode = "json_object" if self.structured_mode in ("json_schema", "json_object") else "text"
                    self.refused_schemas.add(_schema_id(req))
                    self.meter.record_schema_fallback(self.name, role)
                    continue
                if own_mode == "json_object" and err.kind == "unsupported_response_format":
                    own_mode = "text"
                    continue
                if self._adapt(err, req, spelling):
                    continue
                too_long = err.retry_after is not None and err.retry_after > self.cfg.max_retry_after_s
                if err.retry_after is not None and not too_long:
                    replica.paused_until = max(replica.paused_until, time.monotonic() + err.retry_after)
                if not err.retryable or retries >= self.cfg.max_retries or too_long:
                    self.meter.record_failure(self.name, role, err.kind)
                    raise self._final_error(err, replica, retries, too_long) from None
                self.meter.record_retry(self.name, role, err.kind)
                delay = backoff_delay(retries, self.cfg.backoff_base_s, self.cfg.backoff_max_s, self._rng)
                retries += 1
                last = replica
                self._wait(delay, f"retrying after {err.kind}")
                await asyncio.sleep(delay)
                continue
            except BaseException:
                self.window.release()
                if self.tpm:
                    self.tpm.adjust(-estimate)
                raise
            self.window.release()
            self.window.on_success()
            self.pool.on_success(replica)
            if self.tpm:
                self.tpm.adjust(completion.usage.input_tokens + completion.usage.output_tokens - estimate)
            self.meter.record_call(
                self.name, role, completion.usage, self.cfg.price, completion.latency_s, problem=completion.problem
            )
            return completion

    def _adapt(self, err: TransportError, req: LogicalRequest, spelling: tuple[str, str]) -> bool:
        """Switch to a spelling the server accepts; True when the request should be re-sent now.

        ``spelling`` is what the rejected body was built with: when a concurrent call has already
        stepped down since, this rejection is stale and the request is re-sent with the current
        spelling instead of stepping down again (which would skip a mode the server accepts).
        """
        sent_mode, sent_field = spelling
        if err.kind == "unsupported_response_format" and (req.schema is not None or req.json_mode):
            if sent_mode != self.structured_mode:
                return True
            i = STRUCTURED_MODES.index(self.structured_mode)
            if i + 1 < len(STRUCTURED_MODES):
                new = STRUCTURED_MODES[i + 1]
                self.mode_fallbacks.append(f"{self.structured_mode} -> {new}: {err.message[:200]}")
                self.structured_mode = new
                return True
        if err.kind == "unsupported_max_tokens" and "max_tokens" in req.params:
            if sent_field != self.max_tokens_field:
                return True
            if self.max_tokens_field == "max_tokens":
                self.max_tokens_field = "max_completion_tokens"
                return True
        return False

    def _final_error(self, err: TransportError, replica: Replica, retries: int, too_long: bool) -> CallError:
        """The CallError for a call that failed for good, with the config key that fixes it where one does."""
        message = err.message
        retryable = err.retryable
        if too_long:
            message = (
                f"{message} (the server asked to wait {err.retry_after:.0f} s, more than "
                f"models.{self.name}.max_retry_after_s = {self.cfg.max_retry_after_s:g}; try again later)"
            )
            retryable = True
        elif err.retryable:
            message += f" (gave up after {retries + 1} attempts)"
        elif err.kind == "unsupported_param" and err.param:
            message += f" -- {self.fix_for_param(err.param)}"
        elif err.kind == "quota":
            message += " -- the provider refuses for billing or quota reasons: top up the account or use another key"
        return CallError(
            f"{self.name} [{replica.label}]: {message}",
            status=err.status,
            kind=err.kind,
            retryable=retryable,
            retry_after=err.retry_after,
            endpoint=self.name,
            attempts=retries + 1,
        )

    def fix_for_param(self, param: str) -> str:
        """The config change that stops sending a refused request field."""
        field = param.rsplit(".", 1)[-1]
        if field in ("max_tokens", "max_completion_tokens"):
            return f"set models.{self.name}.max_tokens_field or models.{self.name}.sampling.max_tokens: null"
        if field in SAMPLING_FIELDS:
            hint = f"set models.{self.name}.sampling.{field}: null (the model refuses it; null omits it)"
            if field == "temperature":
                hint += " and, for a solver, loop.weak_temperature / loop.strong_temperature: null"
            return hint
        if field in self.extra_body:
            return f"remove models.{self.name}.extra_body.{field}"
        return f"remove {field!r} from models.{self.name} (sampling or extra_body)"

    def _completion(self, reply: Reply, req: LogicalRequest, attempts: int, latency: float) -> Completion:
        data = reply.data
        read = read_reply(data)
        text, reasoning = read.text, read.reasoning
        usage_raw = data.get("usage") or {}
        details = usage_raw.get("completion_tokens_details") or {}
        estimated = not usage_raw.get("prompt_tokens") or not usage_raw.get("completion_tokens")
        usage = Usage(
            input_tokens=int(usage_raw.get("prompt_tokens") or self.estimate_input(req)),
            output_tokens=int(
                usage_raw.get("completion_tokens") or estimate_tokens(text) + estimate_tokens(reasoning or "")
            ),
            reasoning_tokens=int(details.get("reasoning_tokens") or 0),
            estimated=estimated,
        )
        return Completion(
            text=text,
            finish_reason=read.finish_reason,
            usage=usage,
            model=str(data.get("model") or req.model),
            reasoning=reasoning,
            seed=req.params.get("seed"),
            sample=req.sample,
            latency_s=latency,
            attempts=attempts,
            system_fingerprint=data.get("system_fingerprint"),
            problem=read.problem,
        )

    def estimate_input(self, req: LogicalRequest) -> int:
        """Prompt tokens as sent: the messages plus the schema text this endpoint's mode adds to them."""
        body = self.build_body(req)
        extra = 0
        rf = body.get("response_format")
        if isinstance(rf, dict) and rf.get("type") == "json_schema":
            extra = estimate_tokens(canonical_json(rf.get("json_schema") or {}))
        return estimate_messages(body["messages"]) + extra

    def stats(self) -> dict[str, Any]:
        return {
            "window_limit": round(self.window.limit, 2),
            "window_low_water": round(self.window.low_water, 2),
            "window_shrinks": self.window.shrinks,
            "peak_in_flight": self.window.peak_in_flight,
            "structured_mode": self.structured_mode,
            "mode_fallbacks": list(self.mode_fallbacks),
            "replicas": [
                {"label": r.label, "served": r.served, "times_rested": r.times_rested} for r in self.pool.replicas
            ],
        }

    async def aclose(self) -> None:
        for r in self.pool.replicas:
            await r.backend.aclose()


def _schema_id(req: LogicalRequest) -> str:
    assert req.schema is not None
    return canonical_json(req.schema.as_key())


def _with_instructions(messages: list[dict[str, Any]], text: str) -> list[dict[str, Any]]:
    """Append the schema instructions to the last user turn (models heed it more than a system note)."""
    out = list(messages)
    for i in range(len(out) - 1, -1, -1):
        m = out[i]
        if m.get("role") == "user":
            content = m.get("content")
            if isinstance(content, str) and content.endswith(text):
                return out  # a re-ask already carries the schema
            if isinstance(content, str):
                out[i] = {**m, "content": f"{content}\n\n{text}"}
            elif isinstance(content, list):
                out[i] = {**m, "content": [*content, {"type": "text", "text": text}]}
            return out
    out.append({"role": "user", "content": text})
    return out
