"""Getting a typed value out of a model's text: extraction, light repair, validation.

The ladder of tolerance, from cheapest to dearest:
1. the text is JSON -> validate it;
2. the JSON is wrapped (code fences, prose around it) -> cut it out, note the repair;
3. the JSON has syntax slips (trailing commas, single quotes) -> ``json_repair``, note the repair;
4. values of the wrong type that mean the same (``"+8"`` for 8) -> lax validation, note the coercion;
5. anything else (truncated output, missing fields, no JSON at all) -> the caller asks again.

A truncated answer (``finish_reason == "length"``) is never repaired into a value: closing its
brackets would silently invent a shorter answer than the model meant to give.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import json_repair
import jsonschema
from pydantic import BaseModel, ValidationError

from autodata.llm.replies import split_reasoning
from autodata.llm.types import ResponseSchema
from autodata.prompts import render


class OutputError(ValueError):
    """The text could not be turned into a valid value; the message is shown to the model on re-ask."""


_FENCE = re.compile(r"```(?:json|JSON)?\s*\n?(.*?)```", re.DOTALL)


def split_think(text: str) -> tuple[str, str | None]:
    """Separate leading reasoning: a ``<think>…</think>`` block, or a template-opened ``…</think>``
    (see :func:`autodata.llm.replies.split_reasoning`); an unclosed ``<think>`` leaves no answer."""
    split = split_reasoning(text)
    return split.answer, split.reasoning


@lru_cache(maxsize=256)
def schema_for(model: type[BaseModel]) -> ResponseSchema:
    """Built once per model class: pydantic's schema generation costs about a millisecond, on every call."""
    return ResponseSchema(name=model.__name__, schema=model.model_json_schema())


def instruction_text(schema: ResponseSchema | None) -> str:
    """The schema spelled out in the prompt, for JSON-mode and plain-text servers."""
    schema_json = json.dumps(schema.schema if schema else {"type": "object"}, indent=1, ensure_ascii=False)
    return render("structured_instructions.j2", name=schema.name if schema else "", schema_json=schema_json)


def repair_prompt(error: str, truncated: bool, schema: ResponseSchema | None = None) -> str:
    """The re-ask after an unusable answer: the error, and the schema again (a server that ignores
    ``response_format`` never showed it to the model)."""
    text = render("structured_repair.j2", error=error, truncated=truncated)
    if schema is not None:
        text = f"{text}\n\n{instruction_text(schema)}"
    return text


def parse_json(text: str, finish_reason: str | None) -> tuple[Any, list[str]]:
    """Return (value, repairs). Raises OutputError when no trustworthy JSON can be had."""
    repairs: list[str] = []
    body, _ = split_think(text)
    body = body.strip()
    if not body:
        raise OutputError("the answer was empty")
    try:
        return json.loads(body), repairs
    except ValueError:
        pass
    if finish_reason == "length":
        raise OutputError("the answer was cut off by the token limit before the JSON was complete")
    candidate = _extract(body)
    if candidate is not None and candidate != body:
        try:
            value = json.loads(candidate)
            repairs.append("extracted JSON from surrounding text")
            return value, repairs
        except ValueError:
            body = candidate
            repairs.append("extracted JSON from surrounding text")
    if not body.lstrip().startswith(("{", "[")):
        raise OutputError("the answer contained no JSON object")
    fixed = json_repair.repair_json(body, return_objects=True)
    if fixed in ("", None) or (isinstance(fixed, (dict, list)) and not fixed):
        raise OutputError("the answer was not valid JSON and could not be repaired")
    repairs.append("repaired JSON syntax")
    return fixed, repairs


def _extract(text: str) -> str | None:
    m = _FENCE.search(text)
    if m:
        return m.group(1).strip()
    start = text.find("{")
    end = text.rfind("}")
    if start != -1 and end > start:
        return text[start : end + 1]
    return None


Validator = Callable[[Any], tuple[Any, list[str]]]


def pydantic_validator(model: type[BaseModel]) -> Validator:
    """Strict first, lax second: a lax-only success is a coercion we record, not hide."""

    def validate(obj: Any) -> tuple[Any, list[str]]:
        try:
            return model.model_validate(obj, strict=True), []
        except ValidationError:
            pass
        try:
            value = model.model_validate(obj)
        except ValidationError as exc:
            raise OutputError(_pydantic_errors(exc)) from None
        return value, ["coerced value types (e.g. a number given as a string)"]

    return validate


def json_schema_validator(schema: dict[str, Any] | None) -> Validator:
    """Validate against a raw JSON Schema (per-line schemas in ``autodata generate``)."""
    if not schema:

        def object_only(obj: Any) -> tuple[Any, list[str]]:
            if not isinstance(obj, dict):
                raise OutputError(f"expected a JSON object, got {type(obj).__name__}")
            return obj, []

        return object_only
    cls = jsonschema.validators.validator_for(schema)
    checker = cls(schema)

    def validate(obj: Any) -> tuple[Any, list[str]]:
        errors = sorted(checker.iter_errors(obj), key=lambda e: list(e.path))
        if errors:
            parts = [f"{'.'.join(str(p) for p in e.path) or '(root)'}: {e.message}" for e in errors[:5]]
            raise OutputError("; ".join(parts))
        return obj, []

    return validate


def _pydantic_errors(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False)[:6]:
        loc = ".".join(str(p) for p in err["loc"]) or "(root)"
        parts.append(f"{loc}: {err['msg']}")
    more = len(exc.errors()) - len(parts)
    if more > 0:
        parts.append(f"and {more} more")
    return "; ".join(parts)
