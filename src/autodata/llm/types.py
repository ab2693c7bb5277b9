"""What goes into and comes out of one model call, independent of the server behind it."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

CACHE_KEY_VERSION = 1


def canonical_json(obj: Any) -> str:
    """Stable text of a JSON value: sorted keys, no spaces, UTF-8 kept; the basis of cache keys."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def derive_seed(run_seed: int, sample: int) -> int:
    """Request seed for sample ``i``: a stable function of the run seed and i, in int31 range.

    Servers that honour seeds (vLLM, SGLang, serve-sim) then give reproducible samples, and
    different samples of one prompt differ because their seeds do.
    """
    digest = hashlib.sha256(f"autodata-seed:{run_seed}:{sample}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


@dataclass(frozen=True, slots=True)
class ResponseSchema:
    """A JSON schema the answer must satisfy, with the name servers want for ``json_schema`` mode."""

    name: str
    schema: dict[str, Any]
    strict: bool = False

    def as_key(self) -> dict[str, Any]:
        return {"name": self.name, "schema": self.schema, "strict": self.strict}


@dataclass(frozen=True, slots=True)
class LogicalRequest:
    """A call as the caller means it, before any server-specific spelling.

    The cache key is computed from this, not from the wire body, so falling back from
    ``json_schema`` to JSON mode on a server that lacks it does not change which answer is reused.
    """

    model: str
    messages: tuple[dict[str, Any], ...]
    params: dict[str, Any]
    schema: ResponseSchema | None
    extra_body: dict[str, Any]
    sample: int
    json_mode: bool = False  # plain JSON object requested without a schema
    namespace: str = ""  # e.g. the simulator's version: its answers change when its code does
    endpoint_id: str = ""  # which server(s): the sorted base URLs (see runtime.endpoint_identity)

    def cache_key(self) -> str:
        payload = {
            "v": CACHE_KEY_VERSION,
            "model": self.model,
            "messages": list(self.messages),
            "params": self.params,
            "schema": self.schema.as_key() if self.schema else None,
            "json_mode": self.json_mode,
            "extra": self.extra_body,
            "sample": self.sample,
        }
        if self.namespace:
            payload["ns"] = self.namespace
        if self.endpoint_id:
            payload["ep"] = self.endpoint_id
        return hashlib.sha256(canonical_json(payload).encode()).hexdigest()


@dataclass(slots=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    # True when the server sent no (complete) ``usage`` and the counts are our estimate
    # (about 4 characters a token, over the prompt as sent, schema text included)
    estimated: bool = False

    def to_dict(self) -> dict[str, int | bool]:
        d: dict[str, int | bool] = {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "reasoning_tokens": self.reasoning_tokens,
        }
        if self.estimated:
            d["estimated"] = True
        return d


@dataclass(slots=True)
class Completion:
    """One answer. ``cached`` answers cost nothing now but keep the usage they cost when made."""

    text: str
    finish_reason: str | None
    usage: Usage
    model: str
    reasoning: str | None = None
    cached: bool = False
    seed: int | None = None
    sample: int = 0
    key: str = ""
    latency_s: float = 0.0
    attempts: int = 1
    system_fingerprint: str | None = None
    # Why this reply holds no usable answer, or None when it does. A short code, then ": " and the
    # detail, e.g. "content_filter: finish_reason content_filter with no content". Codes:
    # content_filter, provider_error, no_message, reasoning_only, unclosed_think, empty, truncated.
    # A reply with a problem is an *attempt error*: never judged, never scored.
    problem: str | None = None
    # the other choices of a reply asked with n > 1 (``EndpointClient.call(all_choices=True)``); never cached
    siblings: list[Completion] = field(default_factory=list)

    def to_cache(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "finish_reason": self.finish_reason,
            "usage": self.usage.to_dict(),
            "model": self.model,
            "reasoning": self.reasoning,
            "system_fingerprint": self.system_fingerprint,
            "latency_s": round(self.latency_s, 4),
            "problem": self.problem,
        }

    @classmethod
    def from_cache(cls, data: dict[str, Any], *, key: str, sample: int, seed: int | None) -> Completion:
        return cls(
            text=data["text"],
            finish_reason=data.get("finish_reason"),
            usage=Usage(**data.get("usage", {})),
            model=data.get("model", ""),
            reasoning=data.get("reasoning"),
            cached=True,
            seed=seed,
            sample=sample,
            key=key,
            latency_s=0.0,
            attempts=0,
            system_fingerprint=data.get("system_fingerprint"),
            problem=data.get("problem"),
        )


@dataclass(slots=True)
class StructuredFailure:
    """One rejected structured answer: kept so a run can show what the model got wrong."""

    attempt: int
    error: str
    text_excerpt: str
    finish_reason: str | None


@dataclass(slots=True)
class StructuredResult:
    """A validated value plus the record of how we got it (repairs applied, invalid answers seen)."""

    value: Any
    completion: Completion
    repairs: list[str] = field(default_factory=list)
    failures: list[StructuredFailure] = field(default_factory=list)
    mode: str = "json_schema"


# ----------------------------------------------------------------------------------------------
# Errors


class CallError(Exception):
    """A call that finally failed. ``retryable`` says whether trying again later could help."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        kind: str = "error",
        retryable: bool = False,
        retry_after: float | None = None,
        endpoint: str = "",
        attempts: int = 1,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.kind = kind
        self.retryable = retryable
        self.retry_after = retry_after
        self.endpoint = endpoint
        self.attempts = attempts

    def to_dict(self) -> dict[str, Any]:
        return {
            "error": self.message,
            "kind": self.kind,
            "status": self.status,
            "endpoint": self.endpoint,
            "attempts": self.attempts,
        }

    def __str__(self) -> str:
        status = f" (HTTP {self.status})" if self.status else ""
        return f"{self.kind}{status}: {self.message}"


class StructuredOutputError(CallError):
    """The model did not produce valid structured output within the repair budget."""

    def __init__(self, message: str, *, failures: list[StructuredFailure], endpoint: str = "") -> None:
        super().__init__(message, kind="invalid_output", endpoint=endpoint, attempts=len(failures))
        self.failures = failures

    def to_dict(self) -> dict[str, Any]:
        d = super().to_dict()
        d["failures"] = [
            {"attempt": f.attempt, "error": f.error, "finish_reason": f.finish_reason} for f in self.failures
        ]
        return d
