"""The simulated ladder's models and the shapes its role handlers share.

A :class:`SimModel` is a rung of the ladder (skill, verbosity, context window); a :class:`SimRequest` is
what a handler gets: the model, the contract inputs the dispatcher read for the role
(:mod:`autodata.sim.contracts`), and a private RNG seeded from those inputs. A handler returns a
:class:`SimOutput`. Structured answers carry the defects real models produce (invalid JSON, "+8" for
a number, a missing field, truncation, a code fence around the JSON) at a seeded rate, weaker models
more often.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from typing import Any

FINGERPRINT = "autodata-simulated"
# Part of the cache key of simulated calls: bump it whenever a change to the simulator changes answers,
# so cached answers of the old simulator are not replayed as if the new one had given them.
SIM_VERSION = "sim-5"
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
    """What a handler sees: the model, the role's contract inputs, and a private RNG seeded from them.

    ``inputs`` holds exactly what the role's contract reads from the request (fenced data blocks,
    structured feedback, directives; see :mod:`autodata.sim.contracts`), never the instruction prose
    around them. ``schema`` is the response schema asked for (None for a free-text answer).
    """

    model: SimModel
    schema: dict[str, Any] | None
    inputs: dict[str, Any]
    max_tokens: int
    rng: random.Random
    fault_rate: float = 0.0


@dataclass(slots=True)
class SimOutput:
    text: str
    finish_reason: str = "stop"
    reasoning: str | None = None
    structured: bool = False
    faults: list[str] = field(default_factory=list)


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
            out = {"answer": phrase(rng, terms, 6)}
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
    text = phrase(rng, terms, length)
    min_len = int(schema.get("minLength", 0))
    while len(text) < min_len:
        text += " " + phrase(rng, terms, 4)
    if "maxLength" in schema:
        text = text[: int(schema["maxLength"])]
    return text


def _resolve(ref: str, root: dict[str, Any]) -> dict[str, Any]:
    node: Any = root
    for part in ref.lstrip("#/").split("/"):
        node = node.get(part, {}) if isinstance(node, dict) else {}
    return node if isinstance(node, dict) else {}


def structured(req: SimRequest, value: dict[str, Any]) -> SimOutput:
    """A role's JSON answer, damaged at the model's fault rate (:func:`inject_fault`)."""
    out = SimOutput(text=json.dumps(value, ensure_ascii=False), structured=True)
    fault_rng = random.Random(req.rng.random())
    if fault_rng.random() < active_fault_rate(req):
        inject_fault(out, value, req.schema or {}, fault_rng)
    return out


def phrase(rng: random.Random, terms: list[str], n: int) -> str:
    return " ".join(rng.choice(terms) for _ in range(max(1, n)))
