"""Pre-flight: before the first document, check each endpoint a command will use.

Per endpoint (``provider: simulated`` is skipped: it is in-process and always there):

1. the model is served: ``GET /v1/models`` lists it (on a 404 or an absent model, what the server does
   serve is reported); a server without the route (Azure's classic deployment URLs) is a note, not an error;
2. one tiny call works (a bad key, a wrong URL, a refused parameter, an empty quota show up here, with
   the config key that fixes them);
3. structured output is honoured: a ``json_schema`` request must come back as valid JSON; a server that
   ignores it (Anthropic's compatibility layer, older Ollama, llama-server without a grammar) is noted,
   and the run steps down to JSON mode by itself after two misses;
4. where the server reports its context window (vLLM's ``max_model_len`` in ``/v1/models``,
   OpenRouter's ``context_length``), the document budget plus the prompt and the answer fit it.

The calls made here are not cached and are not part of a run's counts (they are reported apart).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from autodata.errors import UserError
from autodata.llm.backends import OpenAIBackend
from autodata.llm.replies import holds_answer, problem_code
from autodata.llm.runtime import ModelRuntime
from autodata.llm.structured import OutputError, json_schema_validator, parse_json
from autodata.llm.types import CallError, ResponseSchema

# What the prompts add around a document, and the answer room, in tokens: the largest role prompt
# (the challenger's template with its instructions and schema) is about 1,500 tokens.
PROMPT_OVERHEAD_TOKENS = 1500
DEFAULT_ANSWER_TOKENS = 2048
MIN_DOCUMENT_TOKENS = 200  # documents.max_tokens's own floor
PING_TOKENS = 64  # the tiny call's own answer budget
PING_JSON_TOKENS = 256  # the structured-output check's
PING = [{"role": "user", "content": "Reply with the single word: ready"}]
PING_SCHEMA = ResponseSchema(
    name="Ping",
    schema={
        "type": "object",
        "properties": {"status": {"type": "string"}},
        "required": ["status"],
        "additionalProperties": False,
    },
)
PING_JSON = [{"role": "user", "content": 'Reply with a JSON object {"status": "ready"}.'}]


@dataclass
class EndpointCheck:
    """What pre-flight found about one endpoint. ``problems`` stop a run; ``notes`` do not."""

    name: str
    model: str
    skipped: bool = False
    served: list[str] | None = None  # what /v1/models lists (None: the server has no such route)
    context_window: int | None = None  # tokens, when the server reports it
    simulated: bool = False  # the server said it is autodata's simulator
    structured_ok: bool | None = None
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "model": self.model,
            "skipped": self.skipped,
            "served": self.served,
            "context_window": self.context_window,
            "simulated": self.simulated,
            "structured_ok": self.structured_ok,
            "problems": self.problems,
            "notes": self.notes,
        }


@dataclass
class PreflightReport:
    checks: dict[str, EndpointCheck]
    calls: int = 0  # requests sent by the chat checks (not part of any run's counts; /models not included)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def problems(self) -> list[str]:
        return [p for c in self.checks.values() for p in c.problems]

    @property
    def notes(self) -> list[str]:
        return [f"{c.name}: {n}" for c in self.checks.values() for n in c.notes]

    def simulated(self) -> list[str]:
        """Endpoints whose server said it is autodata's simulator (``system_fingerprint``)."""
        return sorted(n for n, c in self.checks.items() if c.simulated)

    def context_windows(self) -> dict[str, int]:
        """Endpoint -> context window in tokens, where the server reports one (a budget can default from it)."""
        return {n: c.context_window for n, c in self.checks.items() if c.context_window}


async def check(
    runtime: ModelRuntime,
    endpoints: Iterable[str],
    *,
    document_tokens: int | None = None,
    roles: dict[str, list[str]] | None = None,
    params: dict[str, dict[str, Any]] | None = None,
) -> PreflightReport:
    """Check ``endpoints`` (names in ``runtime.config.models``) concurrently.

    ``document_tokens``: the document budget (``documents.max_tokens``) to check against a reported
    context window. ``roles``: endpoint -> the roles it plays, for messages. ``params``: endpoint -> the
    sampling parameters the run's calls add (the solvers' temperatures), sent with the tiny call so a
    model that refuses one is caught here. Never raises for a server's answer: every finding is in the report.
    """
    names = sorted(set(endpoints))
    checks = await asyncio.gather(
        *(_check_one(runtime, n, document_tokens, (roles or {}).get(n, []), (params or {}).get(n, {})) for n in names)
    )
    t = runtime.meter.totals
    calls = t.calls + t.failures + t.retries  # requests sent, answered or not
    return PreflightReport({c.name: c for c in checks}, calls=calls)


async def _check_one(
    runtime: ModelRuntime, name: str, document_tokens: int | None, roles: list[str], params: dict[str, Any]
) -> EndpointCheck:
    ep = runtime.config.models[name]
    found = EndpointCheck(name=name, model=ep.model)
    if ep.provider == "simulated":
        found.skipped = True
        found.simulated = True
        return found
    try:
        client = runtime.endpoint(name)
    except UserError as exc:  # a missing key or ${ENV}: a user error with the key named
        found.problems.extend(exc.details or [exc.message])
        return found
    await _models(client, found)
    if found.problems:
        return found
    # 2. one tiny call
    try:
        req = runtime.request(name, PING, params={**params, "max_tokens": PING_TOKENS})
        done = await client.call(req, "preflight")
    except CallError as err:
        found.problems.append(_fix(name, err))
        return found
    client.note_fingerprint(done.system_fingerprint)
    found.simulated = client.simulated_seen
    if done.problem and not (problem_code(done.problem) == "truncated" and done.text.strip()):
        # a text cut at this ping's own 64 tokens is still an answer: the server works, the config is not at fault
        found.notes.append(
            f"a tiny call came back without an answer ({done.problem}); {advice(name, done.problem, PING_TOKENS)}"
        )
    # 3. structured output
    try:
        req = runtime.request(name, PING_JSON, params={"max_tokens": PING_JSON_TOKENS}, schema=PING_SCHEMA)
        done = await client.call(req, "preflight")
    except CallError as err:
        found.problems.append(_fix(name, err))
        return found
    if not holds_answer(done.problem):  # no answer at all says nothing about the schema: not a verdict on it
        found.notes.append(
            f"the structured-output check got no answer ({done.problem}); not checked. "
            f"{advice(name, done.problem, PING_JSON_TOKENS)}"
        )
    else:
        try:
            obj, _ = parse_json(done.text, done.finish_reason)
            json_schema_validator(PING_SCHEMA.schema)(obj)
            found.structured_ok = True
        except OutputError as err:
            found.structured_ok = False
            found.notes.append(
                f"structured output is not honoured ({err}); the run will write the schema into the prompt "
                f"(or set models.{name}.structured_output: json_object)"
            )
    # 4. context window
    if found.context_window and document_tokens:
        answer = int(ep.sampling.max_tokens or DEFAULT_ANSWER_TOKENS)
        need = document_tokens + PROMPT_OVERHEAD_TOKENS + answer
        if need > found.context_window:
            room = found.context_window - PROMPT_OVERHEAD_TOKENS - answer
            who = f" (roles: {', '.join(roles)})" if roles else ""
            if room >= MIN_DOCUMENT_TOKENS:
                fix = f"set documents.max_tokens to at most {room}" + (
                    f" or models.{name}.sampling.max_tokens lower" if ep.sampling.max_tokens else ""
                )
            else:  # no document budget fits: the answer budget or the server's window must change
                fix = (
                    f"no document fits beside the prompt and the answer: set models.{name}.sampling.max_tokens "
                    f"lower (now {answer}) or start the server with a larger context window"
                )
            found.problems.append(
                f"documents.max_tokens: {document_tokens} tokens of document + ~{PROMPT_OVERHEAD_TOKENS} of prompt + "
                f"{answer} of answer do not fit models.{name}{who}: its server reports a context window of "
                f"{found.context_window} tokens; {fix}"
            )
    return found


def advice(name: str, problem: str | None, budget: int | None = None) -> str:
    """What a user can do about a reply without an answer (``Completion.problem``), by its code;
    ``budget``: the call's own answer budget when pre-flight set it (not the user's setting)."""
    code = problem_code(problem)
    if code in ("reasoning_only", "unclosed_think", "truncated") or (problem and "token limit" in problem):
        if budget is not None:  # pre-flight's own small budget, not the config's
            return (
                f"the model spent this call's {budget} tokens before answering (a reasoning model thinks first): "
                f"make sure models.{name}.sampling.max_tokens leaves room for its thinking and the answer"
            )
        return f"the model spent its tokens before answering: raise models.{name}.sampling.max_tokens"
    if code == "content_filter":
        return "the provider's content filter stopped the reply; the run counts such replies as attempt errors"
    if code in ("provider_error", "no_message"):
        return (
            "the server sent no answer this time (an upstream error); the run counts such replies as attempt "
            "errors and asks again"
        )
    return f"the model answered nothing; check models.{name}.model and its chat template"


async def _models(client: Any, found: EndpointCheck) -> None:
    """GET /models on the first replica; fills ``served`` and ``context_window`` or a problem."""
    backend = client.pool.replicas[0].backend
    if not isinstance(backend, OpenAIBackend):
        found.notes.append("the model list is checked only on the default transport")
        return
    import httpx2 as httpx
    import openai

    try:
        http = await backend.client.get("/models", cast_to=httpx.Response, options=backend._options)
        data = json.loads(await http.aread())
    except openai.NotFoundError:
        found.notes.append(f"{backend.label} has no /models route; the model name is checked by the first call")
        return
    except openai.APIStatusError as exc:
        if exc.status_code in (401, 403):
            found.problems.append(
                f"models.{found.name}.api_key_env: {backend.label} refused the key (HTTP {exc.status_code})"
            )
        else:
            found.notes.append(f"{backend.label}/models answered HTTP {exc.status_code}")
        return
    except (openai.APIConnectionError, ValueError) as exc:
        found.problems.append(f"models.{found.name}.base_url: cannot reach {backend.label}: {type(exc).__name__}")
        return
    entries = data.get("data") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        found.notes.append(f"{backend.label}/models did not list models")
        return
    found.served = [str(e.get("id")) for e in entries if isinstance(e, dict) and e.get("id")]
    entry = next((e for e in entries if isinstance(e, dict) and e.get("id") == found.model), None)
    if entry is None and len(found.served) == 1:
        # a single-model server (llama-server) answers whatever name a request gives; the call below checks it
        found.notes.append(f"{backend.label} serves one model ({found.served[0]}); {found.model!r} is sent as is")
        return
    if entry is None:
        found.problems.append(
            f"models.{found.name}.model: {found.model!r} is not served by {backend.label}; "
            f"it serves: {', '.join(found.served) or '(nothing)'}"
        )
        return
    for key in ("max_model_len", "context_length", "context_window"):
        value = entry.get(key)
        if isinstance(value, int) and value > 0:
            found.context_window = value
            break


def _fix(name: str, err: CallError) -> str:
    """A failed pre-flight call as a line naming the config key that fixes it."""
    key = {
        "auth": f"models.{name}.api_key_env",
        "quota": f"models.{name} (account)",
        "not_found": f"models.{name}.model",
        "connection": f"models.{name}.base_url",
        "timeout": f"models.{name}.base_url / timeout_s",
    }.get(err.kind, f"models.{name}")
    return f"{key}: {err}"
