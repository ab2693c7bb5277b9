"""``autodata generate``: a JSONL file of prompts in, one cached completion per prompt and sample out.

Results are written in input order while calls run concurrently: a bounded window of prompts is
in flight, and a finished prompt is written as soon as every prompt before it is written. Memory
therefore stays flat however long the input is. A bad line or a failed call becomes a record in
``failures.jsonl``; nothing is dropped silently and nothing stops the batch.
"""

from __future__ import annotations

import asyncio
import collections
import json
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import jsonschema
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from autodata.config import format_error
from autodata.errors import UserError
from autodata.llm.runtime import ModelRuntime
from autodata.llm.structured import json_schema_validator
from autodata.llm.types import CallError, Completion, ResponseSchema, StructuredResult


class Message(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "user", "assistant", "tool", "developer"]
    content: str | list[dict[str, Any]] | None = None


class LineParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    max_tokens: int | None = Field(None, ge=1)
    stop: list[str] | None = None
    seed: int | None = None


class PromptLine(BaseModel):
    """One input line: ``prompt`` or ``messages``, optional ``id``, ``response_format``, ``params``."""

    model_config = ConfigDict(extra="forbid")
    id: str | int | None = None
    prompt: str | None = None
    system: str | None = None
    messages: list[Message] | None = None
    response_format: dict[str, Any] | None = None
    params: LineParams | None = None

    @model_validator(mode="after")
    def _one_source(self) -> PromptLine:
        if (self.prompt is None) == (self.messages is None):
            raise ValueError("give exactly one of 'prompt' or 'messages'")
        if self.messages is not None and not self.messages:
            raise ValueError("'messages' is empty")
        if self.response_format is not None:
            kind = self.response_format.get("type")
            if kind not in ("json_object", "json_schema", "text"):
                raise ValueError("response_format.type must be 'json_object', 'json_schema' or 'text'")
            if kind == "json_schema":
                js = self.response_format.get("json_schema")
                if not isinstance(js, dict) or not isinstance(js.get("schema"), dict):
                    raise ValueError("response_format.json_schema.schema must be a JSON Schema object")
                try:  # a broken schema is a bad input line, found before any call is paid for
                    jsonschema.validators.validator_for(js["schema"]).check_schema(js["schema"])
                except jsonschema.exceptions.SchemaError as exc:
                    raise ValueError(
                        f"response_format.json_schema.schema is not a valid JSON Schema: {exc.message}"
                    ) from None
        return self

    def chat(self) -> list[dict[str, Any]]:
        if self.messages is not None:
            return [m.model_dump(exclude_none=True) for m in self.messages]
        msgs: list[dict[str, Any]] = []
        if self.system:
            msgs.append({"role": "system", "content": self.system})
        msgs.append({"role": "user", "content": self.prompt})
        return msgs


@dataclass(slots=True)
class Item:
    line: int
    id: str
    prompt: PromptLine | None = None
    error: str | None = None


@dataclass(slots=True)
class BatchStats:
    lines: int = 0
    requests: int = 0
    completed: int = 0
    failed: int = 0
    bad_lines: int = 0
    from_cache: int = 0
    repaired: int = 0
    invalid_answers: int = 0
    errors: dict[str, int] = field(default_factory=dict)


ProgressFn = Callable[[BatchStats], None]


def read_items(path: Path) -> Iterator[Item]:
    """Stream the input; a line that is not a valid prompt becomes an Item with an error, not a crash."""
    seen: set[str] = set()
    with path.open("r", encoding="utf-8", errors="replace") as fh:
        for lineno, raw in enumerate(fh, start=1):
            text = raw.strip()
            if not text:
                continue
            item = Item(line=lineno, id=f"line-{lineno}")
            try:
                data = json.loads(text)
            except ValueError as exc:
                item.error = f"line {lineno}: not valid JSON ({exc.msg} at column {exc.colno})"
                yield item
                continue
            if not isinstance(data, dict):
                item.error = f"line {lineno}: expected a JSON object, got {type(data).__name__}"
                yield item
                continue
            if data.get("id") is not None:
                item.id = str(data["id"])
            try:
                item.prompt = PromptLine.model_validate(data)
            except ValidationError as exc:
                item.error = f"line {lineno}: " + "; ".join(format_error(e) for e in exc.errors(include_url=False))
                yield item
                continue
            if item.id in seen:
                item.error = f"line {lineno}: duplicate id {item.id!r} (ids must be unique)"
                item.prompt = None
            seen.add(item.id)
            yield item


async def run_batch(
    runtime: ModelRuntime,
    input_path: Path,
    out_dir: Path,
    *,
    model: str,
    n: int = 1,
    on_progress: ProgressFn | None = None,
    window: int | None = None,
) -> dict[str, Any]:
    if not input_path.is_file():
        raise UserError(f"input file not found: {input_path}")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot use {out_dir} as the output directory: {exc.strerror or exc}") from None
    client = runtime.endpoint(model)
    ahead = window or max(64, 4 * client.cfg.max_concurrency // max(1, n))
    stats = BatchStats()
    started = time.monotonic()

    async def one(item: Item) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        done: list[dict[str, Any]] = []
        failed: list[dict[str, Any]] = []
        if item.prompt is None:
            stats.bad_lines += 1
            failed.append({"id": item.id, "line": item.line, "sample": None, "kind": "bad_input", "error": item.error})
            return done, failed
        results = await asyncio.gather(*(_sample(runtime, model, item, i) for i in range(n)), return_exceptions=True)
        for i, res in enumerate(results):
            stats.requests += 1
            if isinstance(res, CallError):
                stats.failed += 1
                stats.errors[res.kind] = stats.errors.get(res.kind, 0) + 1
                failed.append({"id": item.id, "line": item.line, "sample": i, **res.to_dict()})
            elif isinstance(res, BaseException):
                if isinstance(res, (KeyboardInterrupt, SystemExit, asyncio.CancelledError)):
                    raise res
                # A bug of ours must not sink the batch: record it with its traceback and go on.
                stats.failed += 1
                stats.errors["internal_error"] = stats.errors.get("internal_error", 0) + 1
                failed.append(
                    {
                        "id": item.id,
                        "line": item.line,
                        "sample": i,
                        "kind": "internal_error",
                        "error": f"{type(res).__name__}: {res}",
                        "traceback": "".join(traceback.format_exception(res))[-4000:],
                    }
                )
            else:
                stats.completed += 1
                record = _record(item, i, model, res)
                stats.from_cache += bool(record["cached"])
                stats.repaired += bool(record.get("repairs"))
                stats.invalid_answers += int(record.get("invalid_attempts", 0))
                done.append(record)
        if on_progress:
            on_progress(stats)
        return done, failed

    comp_path = out_dir / "completions.jsonl"
    fail_path = out_dir / "failures.jsonl"
    pending: collections.deque[asyncio.Task[tuple[list[dict[str, Any]], list[dict[str, Any]]]]] = collections.deque()
    with comp_path.open("w", encoding="utf-8") as comp_fh, fail_path.open("w", encoding="utf-8") as fail_fh:

        def write(result: tuple[list[dict[str, Any]], list[dict[str, Any]]]) -> None:
            for rec in result[0]:
                comp_fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
            for rec in result[1]:
                fail_fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
            if result[0]:
                comp_fh.flush()
            if result[1]:
                fail_fh.flush()

        try:
            for item in read_items(input_path):
                stats.lines += 1
                pending.append(asyncio.create_task(one(item)))
                while pending and (len(pending) >= ahead or pending[0].done()):
                    write(await pending.popleft())
            while pending:
                write(await pending.popleft())
        finally:
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)
    if stats.lines == 0:
        raise UserError(f"{input_path}: no prompt lines found (expected JSONL with 'prompt' or 'messages')")
    wall = time.monotonic() - started
    summary = {
        "command": "generate",
        "input": str(input_path),
        "model": model,
        "served_model": client.cfg.model,
        "provider": client.cfg.provider,
        "simulated": client.cfg.provider == "simulated",
        "n": n,
        "lines": stats.lines,
        "bad_lines": stats.bad_lines,
        "requests": stats.requests,
        "completed": stats.completed,
        "failed": stats.failed,
        "from_cache": stats.from_cache,
        "repaired_outputs": stats.repaired,
        "invalid_answers_reasked": stats.invalid_answers,
        # answers without JSON from a server that ignored the schema: not kept in the cache (asked again)
        "forgotten_answers": runtime.forgotten,
        "errors": stats.errors,
        "wall_s": round(wall, 3),
        "cache": {"enabled": runtime.cache is not None, "path": str(runtime.cache.path) if runtime.cache else None},
        "config_fingerprint": runtime.config.fingerprint(),
        "usage": runtime.meter.summary(),
        "endpoints": runtime.stats(),
        "outputs": {"completions": str(comp_path), "failures": str(fail_path)},
    }
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary


async def _sample(runtime: ModelRuntime, model: str, item: Item, sample: int) -> Completion | StructuredResult:
    assert item.prompt is not None
    line = item.prompt
    params = line.params.model_dump(exclude_none=True) if line.params else None
    messages = line.chat()
    rf = line.response_format
    if rf is None or rf.get("type") == "text":
        return await runtime.complete(model, messages, role="generate", sample=sample, params=params)
    if rf["type"] == "json_object":
        return await runtime.structured(
            model,
            messages,
            validator=json_schema_validator(None),
            role="generate",
            sample=sample,
            params=params,
            json_mode=True,
        )
    js = rf["json_schema"]
    schema = ResponseSchema(
        name=str(js.get("name") or "response"), schema=js["schema"], strict=bool(js.get("strict", False))
    )
    return await runtime.structured(
        model,
        messages,
        schema=schema,
        validator=json_schema_validator(js["schema"]),
        role="generate",
        sample=sample,
        params=params,
    )


def _record(item: Item, sample: int, model: str, res: Completion | StructuredResult) -> dict[str, Any]:
    completion = res.completion if isinstance(res, StructuredResult) else res
    rec: dict[str, Any] = {
        "id": item.id,
        "sample": sample,
        "model": model,
        "served_model": completion.model,
        "seed": completion.seed,
        "text": completion.text,
    }
    if completion.reasoning:
        rec["reasoning"] = completion.reasoning
    if isinstance(res, StructuredResult):
        rec["parsed"] = res.value
        rec["repairs"] = res.repairs
        rec["invalid_attempts"] = len(res.failures)
        if res.failures:
            rec["invalid_errors"] = [f.error for f in res.failures]
    rec.update(
        {
            "finish_reason": completion.finish_reason,
            "usage": completion.usage.to_dict(),
            "cached": completion.cached,
            "attempts": completion.attempts,
            "latency_s": round(completion.latency_s, 4),
        }
    )
    return rec
