"""The simulated model ladder: offline stand-ins for real models, of known strengths.

Statelessness is the point: an answer is a pure function of the request's content (model,
messages, response format, sampling), its ``seed`` (ignored at temperature 0, as greedy decoding
would), and the ladder's global seed. Arrival order, concurrency and earlier requests never matter,
so a retried request, a restarted server, or ``serve-sim`` versus the in-process backend all give
the same answer.

Later parts of autodata teach the ladder roles (challenger, solvers, judge) by registering
:data:`Handler` functions that recognise a request by its response schema name; anything no
handler claims gets the generic behaviour here: fluent filler text built from the prompt's own
terms, or a schema-shaped JSON object. Structured answers carry realistic defects at a seeded rate.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from autodata.llm.tokens import estimate_messages, estimate_tokens
from autodata.llm.types import canonical_json

FINGERPRINT = "autodata-simulated"
# Part of the cache key of simulated calls: bump it whenever a change to the simulator changes answers,
# so cached answers of the old simulator are not replayed as if the new one had given them.
SIM_VERSION = "sim-4"
DEFAULT_MAX_TOKENS = 2048


@dataclass(frozen=True, slots=True)
class SimModel:
    name: str
    skill: float  # 0..1: how often it gets things right, used by role handlers
    verbosity: int  # typical answer length in tokens
    context_window: int = 32768
    reasoning: bool = False
    fault_scale: float = 1.0  # weaker models slip more often


LADDER: dict[str, SimModel] = {
    m.name: m
    for m in (
        SimModel("sim-weak", 0.30, 110, context_window=16384, fault_scale=1.5),
        SimModel("sim-medium", 0.55, 170, fault_scale=1.2),
        SimModel("sim-strong", 0.80, 240),
        SimModel("sim-judge", 0.90, 140, fault_scale=0.5),
        SimModel("sim-challenger", 0.85, 380),
        SimModel("sim-reasoner", 0.85, 200, reasoning=True),
        SimModel("sim-adversary", 0.85, 300),  # an implementer that tries to game the outer loop
    )
}


@dataclass(slots=True)
class SimRequest:
    """What a handler sees: the parsed request plus a private RNG seeded from it."""

    model: SimModel
    messages: list[dict[str, Any]]
    schema: dict[str, Any] | None
    schema_name: str | None
    max_tokens: int
    rng: random.Random
    terms: list[str]
    body: dict[str, Any]
    fault_rate: float = 0.0


@dataclass(slots=True)
class SimOutput:
    text: str
    finish_reason: str = "stop"
    reasoning: str | None = None
    structured: bool = False
    faults: list[str] = field(default_factory=list)


Handler = Callable[[SimRequest], "SimOutput | None"]
_HANDLERS: list[Handler] = []


def register_handler(handler: Handler, *, first: bool = False) -> Handler:
    """Add a role behaviour; handlers are asked in order and the first non-None answer wins.

    ``first`` puts it ahead of those already registered: for a narrower behaviour that must see its
    requests before a general one claims them.
    """
    if handler not in _HANDLERS:
        if first:
            _HANDLERS.insert(0, handler)
        else:
            _HANDLERS.append(handler)
    return handler


class SimulatedLadder:
    def __init__(self, global_seed: int = 0, fault_rate: float = 0.04) -> None:
        self.global_seed = global_seed
        self.fault_rate = fault_rate

    # ------------------------------------------------------------------ entry point

    def respond(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """(HTTP status, OpenAI-shaped JSON) for one chat-completion body."""
        name = body.get("model")
        model = LADDER.get(name) if isinstance(name, str) else None
        if model is None:
            return 404, _error(
                f"The model `{name}` does not exist. Simulated models: {', '.join(LADDER)}", "NotFoundError", 404
            )
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
            return 400, _error("'messages' must be a non-empty list of message objects", "BadRequestError", 400)
        asked = body.get("max_tokens") or body.get("max_completion_tokens")
        if asked is not None and (not isinstance(asked, int) or isinstance(asked, bool) or asked < 1):
            return 400, _error("max_tokens must be a positive integer", "BadRequestError", 400)
        prompt_tokens = estimate_messages(messages)
        room = model.context_window - prompt_tokens
        max_tokens = asked if asked is not None else max(1, min(DEFAULT_MAX_TOKENS, room))
        if room <= 0 or (asked is not None and asked > room):
            return 400, _error(
                f"This model's maximum context length is {model.context_window} tokens. However, you "
                f"requested {prompt_tokens + max_tokens} tokens ({prompt_tokens} in the messages, "
                f"{max_tokens} in the completion). Please reduce the length of the messages or completion.",
                "BadRequestError",
                400,
            )
        n = body.get("n") or 1
        schema, schema_name = _requested_schema(body, messages)
        choices = []
        out_tokens = 0
        reasoning_tokens = 0
        for i in range(int(n)):
            rng = random.Random(self._seed_for(body, i))
            req = SimRequest(
                model, messages, schema, schema_name, max_tokens, rng, _terms(messages), body, self.fault_rate
            )
            out = self._answer(req)
            text_tokens = estimate_tokens(out.text)
            r_tokens = estimate_tokens(out.reasoning) if out.reasoning else 0
            out_tokens += text_tokens + r_tokens
            reasoning_tokens += r_tokens
            message: dict[str, Any] = {"role": "assistant", "content": out.text}
            if out.reasoning is not None:
                message["reasoning_content"] = out.reasoning
            choices.append({"index": i, "message": message, "finish_reason": out.finish_reason})
        digest = hashlib.sha256(canonical_json(body).encode()).hexdigest()[:24]
        usage: dict[str, Any] = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": out_tokens,
            "total_tokens": prompt_tokens + out_tokens,
        }
        if reasoning_tokens:
            usage["completion_tokens_details"] = {"reasoning_tokens": reasoning_tokens}
        return 200, {
            "id": f"chatcmpl-sim-{digest}",
            "object": "chat.completion",
            "created": 0,
            "model": model.name,
            "system_fingerprint": FINGERPRINT,
            "choices": choices,
            "usage": usage,
        }

    def _seed_for(self, body: dict[str, Any], choice: int) -> int:
        temperature = body.get("temperature")
        greedy = temperature is not None and float(temperature) == 0.0
        material = {
            "model": body.get("model"),
            "messages": body.get("messages"),
            "response_format": body.get("response_format"),
            "temperature": temperature,
            "top_p": body.get("top_p"),
            "seed": None if greedy else body.get("seed"),
            "choice": choice,
            "global": self.global_seed,
        }
        return int.from_bytes(hashlib.sha256(canonical_json(material).encode()).digest()[:8], "big")

    def _answer(self, req: SimRequest) -> SimOutput:
        for handler in _HANDLERS:
            out = handler(req)
            if out is not None:
                return out
        if req.schema is not None:
            return self._structured(req)
        return self._prose(req)

    # ------------------------------------------------------------------ generic behaviour

    def _prose(self, req: SimRequest) -> SimOutput:
        rng = req.rng
        m = req.model
        target = max(8, int(m.verbosity * rng.uniform(0.6, 1.4)))
        words = [f"[simulated {m.name}]"]
        while estimate_tokens(" ".join(words)) < target:
            words.append(_sentence(rng, req.terms))
        text = " ".join(words)
        reasoning = None
        if m.reasoning:
            reasoning = "[simulated reasoning] " + " ".join(_sentence(rng, req.terms) for _ in range(4))
        return _cap(SimOutput(text=text, reasoning=reasoning), req.max_tokens)

    def _structured(self, req: SimRequest) -> SimOutput:
        rng = req.rng
        value = fake_from_schema(req.schema or {"type": "object"}, rng, req.terms)
        fault_rng = random.Random(rng.random())
        out = SimOutput(text=json.dumps(value, ensure_ascii=False), structured=True)
        if fault_rng.random() < active_fault_rate(req):
            inject_fault(out, value, req.schema or {}, fault_rng)
        if req.model.reasoning:
            out.reasoning = "[simulated reasoning] " + _sentence(rng, req.terms)
        return _cap(out, req.max_tokens)


# ---------------------------------------------------------------------- helpers (pure)


def active_fault_rate(req: SimRequest) -> float:
    """The ladder's fault rate scaled by the model (weaker models slip more often)."""
    return min(1.0, req.fault_rate * req.model.fault_scale)


FAULT_KINDS = ("invalid_json", "string_number", "missing_field", "truncated", "fenced")


def inject_fault(out: SimOutput, value: Any, schema: dict[str, Any], rng: random.Random) -> None:
    """Damage a structured answer the ways real models do; records which fault was used."""
    kind = rng.choice(FAULT_KINDS)
    text = out.text
    if kind == "string_number" and not _stringify_a_number(value, rng):
        kind = "invalid_json"
    if kind == "missing_field":
        if isinstance(value, dict) and schema.get("required"):
            victim = rng.choice(list(schema["required"]))
            value = {k: v for k, v in value.items() if k != victim}
        else:
            kind = "invalid_json"
    if kind == "string_number" or kind == "missing_field":
        text = json.dumps(value, ensure_ascii=False)
    elif kind == "invalid_json":
        text = text[:-1].rstrip() + ",\n}" if text.endswith("}") else text + ","
    elif kind == "truncated":
        text = text[: max(1, int(len(text) * rng.uniform(0.3, 0.8)))]
        out.finish_reason = "length"
    elif kind == "fenced":
        text = f"Here is the JSON you asked for:\n```json\n{text}\n```\nLet me know if you need changes."
    out.text = text
    out.faults.append(kind)


def _stringify_a_number(value: Any, rng: random.Random) -> bool:
    """Turn one integer/number leaf into a signed string like "+8"; False if there is none."""
    slots: list[tuple[Any, Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                if isinstance(v, (int, float)) and not isinstance(v, bool):
                    slots.append((node, k))
                else:
                    walk(v)
        elif isinstance(node, list):
            for i, v in enumerate(node):
                if isinstance(v, (int, float)) and not isinstance(v, bool):
                    slots.append((node, i))
                else:
                    walk(v)

    walk(value)
    if not slots:
        return False
    container, k = rng.choice(slots)
    n = container[k]
    container[k] = f"+{n}" if n >= 0 else str(n)
    return True


def fake_from_schema(
    schema: dict[str, Any],
    rng: random.Random,
    terms: list[str],
    root: dict[str, Any] | None = None,
    depth: int = 0,
    name: str = "",
) -> Any:
    """A plausible instance of a JSON schema (the subset pydantic emits), filled with prompt terms."""
    root = root or schema
    if depth > 8:
        return None
    if "$ref" in schema:
        target = _resolve(schema["$ref"], root)
        return fake_from_schema(target, rng, terms, root, depth + 1, name)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return rng.choice(schema["enum"])
    for key in ("anyOf", "oneOf"):
        if key in schema:
            options = [o for o in schema[key] if o.get("type") != "null"] or schema[key]
            return fake_from_schema(rng.choice(options), rng, terms, root, depth + 1, name)
    if schema.get("allOf"):
        return fake_from_schema(schema["allOf"][0], rng, terms, root, depth + 1, name)
    typ = schema.get("type")
    if isinstance(typ, list):
        typ = next((t for t in typ if t != "null"), "null")
    if typ is None:
        typ = "object" if "properties" in schema else "string"
    if typ == "object":
        props = schema.get("properties") or {}
        required = set(schema.get("required") or [])
        out: dict[str, Any] = {}
        for key, sub in props.items():
            if key in required or rng.random() < 0.7:
                out[key] = fake_from_schema(sub, rng, terms, root, depth + 1, key)
        if not props and not required:
            out = {"answer": _phrase(rng, terms, 6)}
        return out
    if typ == "array":
        lo = int(schema.get("minItems", 1))
        hi = int(schema.get("maxItems", max(lo, 4)))
        count = rng.randint(lo, max(lo, min(hi, lo + 3)))
        items = schema.get("items") or {"type": "string"}
        return [fake_from_schema(items, rng, terms, root, depth + 1, name) for _ in range(count)]
    if typ == "integer":
        lo = int(schema.get("minimum", schema.get("exclusiveMinimum", -1) + 1 if "exclusiveMinimum" in schema else 0))
        hi = int(
            schema.get(
                "maximum", schema.get("exclusiveMaximum", lo + 11) - 1 if "exclusiveMaximum" in schema else lo + 10
            )
        )
        return rng.randint(lo, max(lo, hi))
    if typ == "number":
        lo = float(schema.get("minimum", schema.get("exclusiveMinimum", 0.0)))
        hi = float(schema.get("maximum", schema.get("exclusiveMaximum", lo + 1.0)))
        return round(rng.uniform(lo, hi), 3)
    if typ == "boolean":
        return rng.random() < 0.5
    if typ == "null":
        return None
    length = rng.randint(3, 12)
    text = _phrase(rng, terms, length)
    min_len = int(schema.get("minLength", 0))
    while len(text) < min_len:
        text += " " + _phrase(rng, terms, 4)
    if "maxLength" in schema:
        text = text[: int(schema["maxLength"])]
    return text


def _resolve(ref: str, root: dict[str, Any]) -> dict[str, Any]:
    node: Any = root
    for part in ref.lstrip("#/").split("/"):
        node = node.get(part, {}) if isinstance(node, dict) else {}
    return node if isinstance(node, dict) else {}


_SCHEMA_MARK = re.compile(r"must satisfy this JSON Schema[^:\n]*:\s*\n", re.IGNORECASE)


def _requested_schema(body: dict[str, Any], messages: list[dict[str, Any]]) -> tuple[dict[str, Any] | None, str | None]:
    """The schema the caller wants, from ``response_format`` or, like a real model, from the prompt."""
    rf = body.get("response_format")
    if isinstance(rf, dict):
        if rf.get("type") == "json_schema":
            js = rf.get("json_schema") or {}
            return js.get("schema") or {"type": "object"}, js.get("name")
    for m in reversed(messages):
        content = m.get("content")
        if not isinstance(content, str):
            continue
        mark = _SCHEMA_MARK.search(content)
        if mark:
            try:
                schema, _ = json.JSONDecoder().raw_decode(content[mark.end() :].lstrip())
                name_match = re.search(r'\("([^"]+)"\)', content[max(0, mark.start() - 10) : mark.end()])
                return schema, name_match.group(1) if name_match else None
            except ValueError:
                break
    if isinstance(rf, dict) and rf.get("type") == "json_object":
        return {"type": "object"}, None
    return None, None


_STOP = frozenset(
    [
        "about",
        "above",
        "after",
        "again",
        "against",
        "because",
        "before",
        "being",
        "below",
        "between",
        "could",
        "every",
        "first",
        "from",
        "have",
        "having",
        "their",
        "there",
        "these",
        "those",
        "through",
        "under",
        "until",
        "which",
        "while",
        "would",
        "should",
        "other",
        "where",
        "whose",
        "shall",
        "might",
        "must",
        "your",
        "yours",
        "what",
        "when",
        "with",
        "within",
        "without",
        "answer",
        "question",
        "following",
        "please",
        "simulated",
        "json",
        "schema",
        "object",
    ]
)
_INSTRUCTIONS = re.compile(r"Answer with a single JSON object")
_WORD = re.compile(r"[A-Za-z][A-Za-z\-]{4,}")


def _terms(messages: list[dict[str, Any]]) -> list[str]:
    """Content words of the last user turn: the vocabulary a simulated answer is written in."""
    text = ""
    for m in reversed(messages):
        if m.get("role") == "user" and isinstance(m.get("content"), str):
            text = m["content"]
            mark = _INSTRUCTIONS.search(text)
            if mark:  # our appended schema instructions are not the question's vocabulary
                text = text[: mark.start()]
            break
    seen: dict[str, None] = {}
    for w in _WORD.findall(text[:4000]):
        lw = w.lower()
        if lw not in _STOP and lw not in seen:
            seen[lw] = None
        if len(seen) >= 24:
            break
    return list(seen) or ["result", "method", "evidence", "approach"]


_TEMPLATES = (
    "The central point is that {a} depends on {b}.",
    "In this setting, {a} constrains how {b} behaves.",
    "One should compare {a} with {b} before drawing a conclusion.",
    "Evidence for {a} comes mainly from {b}.",
    "A careful reading shows that {a} and {b} interact.",
    "This suggests {a} is the deciding factor, not {b}.",
    "Without {a}, the argument about {b} does not hold.",
    "The trade-off between {a} and {b} explains the outcome.",
)


def _sentence(rng: random.Random, terms: list[str]) -> str:
    a, b = rng.choice(terms), rng.choice(terms)
    return rng.choice(_TEMPLATES).format(a=a, b=b)


def _phrase(rng: random.Random, terms: list[str], n: int) -> str:
    return " ".join(rng.choice(terms) for _ in range(max(1, n)))


def _cap(out: SimOutput, max_tokens: int) -> SimOutput:
    """Cut at the token limit like a server would, and say so in finish_reason."""
    budget = max_tokens - (estimate_tokens(out.reasoning) if out.reasoning else 0)
    if estimate_tokens(out.text) > max(budget, 0):
        out.text = out.text[: max(0, budget) * 4]
        out.finish_reason = "length"
    return out


def _error(message: str, etype: str, code: int) -> dict[str, Any]:
    return {"error": {"message": message, "type": etype, "param": None, "code": code}}
