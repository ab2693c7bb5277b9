"""The simulated model ladder: offline stand-ins for real models, of known strengths.

Statelessness is the point: an answer is a pure function of the request (model, sampling, its
``seed``, ignored at temperature 0 as greedy decoding would) and the ladder's global seed. Arrival
order, concurrency and earlier requests never matter, so a retried request, a restarted server, or
``serve-sim`` versus the in-process backend all give the same answer.

A request is answered by the role :mod:`autodata.sim.handlers` identifies from its stable contracts
(the response schema's title; the fenced, labelled data blocks), and a role's randomness is seeded
from the contract inputs it reads plus what the model itself said earlier in the conversation, not
from the prompt's wording: rewording a prompt's instructions changes no simulated answer. A request
no role claims gets the generic behaviour here: fluent filler text built from the prompt's own
terms, or a schema-shaped JSON object, seeded from the whole request. Structured answers carry
realistic defects at a seeded rate.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from typing import Any

from autodata.llm.tokens import estimate_messages, estimate_tokens
from autodata.llm.types import canonical_json
from autodata.sim import handlers
from autodata.sim.base import (
    DEFAULT_MAX_TOKENS,
    FINGERPRINT,
    LADDER,
    SIM_VERSION,
    SimModel,
    SimOutput,
    SimRequest,
    active_fault_rate,
    fake_from_schema,
    inject_fault,
)
from autodata.sim.contracts import ContractError, own_turns, response_schema

__all__ = ["DEFAULT_MAX_TOKENS", "FINGERPRINT", "LADDER", "SIM_VERSION", "SimModel", "SimulatedLadder"]


class SimulatedLadder:
    """The ladder behind ``respond``: one OpenAI chat-completion body in, (status, JSON) out."""

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
        schema = response_schema(body, messages)
        try:
            found = handlers.identify(schema, messages)
        except ContractError as exc:
            return 400, _error(str(exc), "BadRequestError", 400)
        choices = []
        out_tokens = 0
        reasoning_tokens = 0
        for i in range(int(n)):
            if found is None:
                rng = random.Random(self._seed_for(body, i))
                req = SimRequest(model, schema, {"terms": _terms(messages)}, max_tokens, rng, self.fault_rate)
                out = self._structured(req) if schema is not None else self._prose(req)
            else:
                role, inputs = found
                material = {"role": role.name, "inputs": inputs, "own_turns": own_turns(messages)}
                rng = random.Random(self._seed_for(body, i, material))
                req = SimRequest(model, schema, inputs, max_tokens, rng, self.fault_rate)
                out = _cap(role.answer(req), max_tokens)
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

    def _seed_for(self, body: dict[str, Any], choice: int, contract: dict[str, Any] | None = None) -> int:
        """The RNG seed of one choice: from the role's contract inputs, or the whole request when none."""
        temperature = body.get("temperature")
        greedy = temperature is not None and float(temperature) == 0.0
        material = {
            "model": body.get("model"),
            **(
                {"contract": contract}
                if contract is not None
                else {"messages": body.get("messages"), "response_format": body.get("response_format")}
            ),
            "temperature": temperature,
            "top_p": body.get("top_p"),
            "seed": None if greedy else body.get("seed"),
            "choice": choice,
            "global": self.global_seed,
        }
        return int.from_bytes(hashlib.sha256(canonical_json(material).encode()).digest()[:8], "big")

    # ------------------------------------------------------------------ generic behaviour

    def _prose(self, req: SimRequest) -> SimOutput:
        rng = req.rng
        m = req.model
        target = max(8, int(m.verbosity * rng.uniform(0.6, 1.4)))
        words = [f"[simulated {m.name}]"]
        while estimate_tokens(" ".join(words)) < target:
            words.append(_sentence(rng, req.inputs["terms"]))
        text = " ".join(words)
        reasoning = None
        if m.reasoning:
            reasoning = "[simulated reasoning] " + " ".join(_sentence(rng, req.inputs["terms"]) for _ in range(4))
        return _cap(SimOutput(text=text, reasoning=reasoning), req.max_tokens)

    def _structured(self, req: SimRequest) -> SimOutput:
        rng = req.rng
        value = fake_from_schema(req.schema or {"type": "object"}, rng, req.inputs["terms"])
        fault_rng = random.Random(rng.random())
        out = SimOutput(text=json.dumps(value, ensure_ascii=False), structured=True)
        if fault_rng.random() < active_fault_rate(req):
            inject_fault(out, value, req.schema or {}, fault_rng)
        if req.model.reasoning:
            out.reasoning = "[simulated reasoning] " + _sentence(rng, req.inputs["terms"])
        return _cap(out, req.max_tokens)


# ---------------------------------------------------------------------- generic filler (pure)


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
_WORD = re.compile(r"[A-Za-z][A-Za-z\-]{4,}")


def _terms(messages: list[dict[str, Any]]) -> list[str]:
    """Content words of the last user turn: the vocabulary a simulated answer is written in."""
    text = ""
    for m in reversed(messages):
        if m.get("role") == "user" and isinstance(m.get("content"), str):
            text = m["content"]
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


def _cap(out: SimOutput, max_tokens: int) -> SimOutput:
    """Cut at the token limit like a server would, and say so in finish_reason."""
    budget = max_tokens - (estimate_tokens(out.reasoning) if out.reasoning else 0)
    if estimate_tokens(out.text) > max(budget, 0):
        out.text = out.text[: max(0, budget) * 4]
        out.finish_reason = "length"
    return out


def _error(message: str, etype: str, code: int) -> dict[str, Any]:
    return {"error": {"message": message, "type": etype, "param": None, "code": code}}
