"""How the simulator reads a request: stable contracts only, never instruction prose.

A real model reads the whole prompt. The simulator reads exactly two things, both of which are
interfaces autodata keeps stable on purpose, so a prompt's wording can be improved without the
simulator noticing:

1. **The response schema asked for.** Its JSON-schema ``title`` (pydantic's class name) says which
   role is asked: ``response_format.json_schema.schema.title`` in ``json_schema`` mode, or, in JSON
   mode, the title of the JSON schema object spelled out in the prompt (found as a JSON object, not
   by the sentence that introduces it). The dispatcher (:mod:`autodata.sim.handlers`) keys its table
   on the titles of the schema *classes* it imports, so renaming a class either changes both sides or
   breaks the import: never a silent fallback.
2. **Fenced, labelled data blocks**: ``<label attr="…">`` on its own line, the data, ``</label>``.
   Labels are part of the contract: ``document``, ``context``, ``question``, ``answer``, ``rubric``
   (one criterion per line, ``[index] text``), ``feedback`` (a JSON list of earlier rounds' reason
   codes and scores), ``directives`` (a JSON list of the run's declared directives), ``scores`` (a
   JSON object of the harness's means), ``rejections`` (a JSON object of reason-group counts),
   ``analysis`` (a JSON object), ``component`` (one per editable recipe component), ``example``.
   Untrusted text inside a block cannot close it early (``fence`` neutralises closing tags), so the
   first closing tag of a label ends its block; the block opens at the last opening line before it.

Blocks are searched in the user messages from the last to the first, so a re-ask (the runtime's
repair turn) or an agent transcript still finds the data of the opening message.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any


class ContractError(ValueError):
    """A request names a role's schema but lacks a data block that role's contract reads.

    The simulator answers it with an HTTP 400 naming the block, so a template that lost a block
    fails loudly instead of the simulator answering from nothing.
    """


@dataclass(frozen=True, slots=True)
class Block:
    label: str
    attrs: dict[str, str]
    body: str


_ATTR = re.compile(r'(\w+)="([^"]*)"')


def user_texts(messages: list[dict[str, Any]]) -> list[str]:
    """The text of every user message, the last first."""
    return [m["content"] for m in reversed(messages) if m.get("role") == "user" and isinstance(m.get("content"), str)]


def _blocks_in(text: str, label: str) -> list[Block]:
    out = []
    opener = re.compile(rf"^<{label}((?:\s+\w+=\"[^\"]*\")*)\s*>[ \t]*\n?", re.MULTILINE)
    closer = f"</{label}>"
    pos = 0
    while True:
        end = text.find(closer, pos)
        if end < 0:
            return out
        opens = [m for m in opener.finditer(text, pos, end)]
        if opens:
            m = opens[-1]
            body = text[m.end() : end]
            out.append(Block(label, dict(_ATTR.findall(m.group(1) or "")), body[:-1] if body.endswith("\n") else body))
        pos = end + len(closer)


def blocks(messages: list[dict[str, Any]], label: str) -> list[Block]:
    """Every ``<label>`` block of the last user message that has one (in order)."""
    for text in user_texts(messages):
        found = _blocks_in(text, label)
        if found:
            return found
    return []


def block(messages: list[dict[str, Any]], label: str) -> str | None:
    """The body of the ``<label>`` block (the first in its message), or None when there is none."""
    found = blocks(messages, label)
    return found[0].body if found else None


def required(messages: list[dict[str, Any]], label: str, role: str) -> str:
    """Like :func:`block`, but a missing block is a :class:`ContractError` naming the role."""
    body = block(messages, label)
    if body is None:
        raise ContractError(f"simulated {role}: the request has no <{label}> block, which its contract reads")
    return body


def json_block(messages: list[dict[str, Any]], label: str, role: str, *, default: Any = None) -> Any:
    """The JSON value in the ``<label>`` block; ``default`` when there is no block.

    A block that is not valid JSON is a :class:`ContractError`: the data format is the contract.
    """
    body = block(messages, label)
    if body is None:
        return default
    try:
        return json.loads(body)
    except ValueError as exc:
        raise ContractError(f"simulated {role}: the <{label}> block is not JSON ({exc})") from None


_RUBRIC_LINE = re.compile(r"^\[(\d+)\]\s*(.*)$")


def rubric_lines(body: str) -> list[tuple[int, str]]:
    """``[index] criterion`` lines of a ``<rubric>`` block (a weight in parentheses is dropped)."""
    out = []
    for line in body.splitlines():
        m = _RUBRIC_LINE.match(line.strip())
        if m:
            text = re.sub(r"^\(-?\d+\)\s*", "", m.group(2))
            out.append((int(m.group(1)), text))
    return out


def response_schema(body: dict[str, Any], messages: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The JSON schema the caller wants: from ``response_format``, or the schema object in the prompt.

    ``json_object`` mode without a schema in the prompt gives ``{"type": "object"}``; a request with
    neither gives None (a free-text answer).
    """
    rf = body.get("response_format")
    if isinstance(rf, dict) and rf.get("type") == "json_schema":
        js = rf.get("json_schema") or {}
        schema = js.get("schema") or {"type": "object"}
        if "title" not in schema and js.get("name"):
            schema = {**schema, "title": js["name"]}
        return schema
    texts = user_texts(messages)
    if texts:
        found = _schema_in(texts[0])
        if found is not None:
            return found
    if isinstance(rf, dict) and rf.get("type") == "json_object":
        return {"type": "object"}
    return None


def _schema_in(text: str) -> dict[str, Any] | None:
    """The last JSON object in the text that is a JSON schema (has ``properties`` and a ``type``)."""
    decoder = json.JSONDecoder()
    for m in reversed(list(re.finditer(r"^\{", text, re.MULTILINE))):
        try:
            value, _ = decoder.raw_decode(text[m.start() :])
        except ValueError:
            continue
        if isinstance(value, dict) and isinstance(value.get("properties"), dict) and "type" in value:
            return value
    return None


def schema_title(schema: dict[str, Any] | None) -> str | None:
    """The schema's ``title`` (pydantic sets it to the class name), or None."""
    title = schema.get("title") if isinstance(schema, dict) else None
    return title if isinstance(title, str) else None


def json_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """User messages that are whole JSON objects, in order (the agent's tool results are such messages)."""
    out = []
    for m in messages:
        if m.get("role") != "user":
            continue
        try:
            obj = json.loads(m.get("content") or "")
        except (TypeError, ValueError):
            continue
        if isinstance(obj, dict):
            out.append(obj)
    return out


def own_turns(messages: list[dict[str, Any]]) -> list[str]:
    """What the model itself said earlier in the conversation (assistant turns), in order."""
    return [m["content"] for m in messages if m.get("role") == "assistant" and isinstance(m.get("content"), str)]
