"""Reading one chat-completion reply: the answer, the reasoning, and why there is no answer.

A server's 200 does not mean there is an answer. Shapes seen in the wild, each mapped to a
``problem`` code (see :attr:`autodata.llm.types.Completion.problem`):

- ``content_filter``: ``finish_reason: content_filter``, usually with ``content: null`` (Azure OpenAI,
  https://learn.microsoft.com/en-us/azure/ai-services/openai/concepts/content-filter).
- ``provider_error``: ``finish_reason: error`` with an ``error`` object inside the choice, or an
  ``error`` object and no ``choices`` at all (OpenRouter, https://openrouter.ai/docs/api-reference/errors).
- ``no_message``: a choice without ``message`` (Gemini's OpenAI-compatible endpoint,
  https://github.com/googleapis/python-genai/issues/626 and the openai-python reports of
  ``choices[0].message`` being None).
- ``reasoning_only``: ``content: null`` with everything in ``reasoning_content`` / ``reasoning``
  (vLLM with ``--reasoning-parser``: the token budget was spent thinking,
  https://docs.vllm.ai/en/latest/features/reasoning_outputs.html).
- ``unclosed_think``: ``<think>`` never closed, typically cut by ``finish_reason: length``.
- ``empty``: no text at all.
- ``truncated``: text cut by ``finish_reason: length``: not the whole answer the model meant to give.

Reasoning a chat template opens itself (the output holds only ``…</think>``: QwQ, DeepSeek-R1
distills, Qwen3-*-Thinking-2507, whose templates end the prompt with ``<think>``) is split off like
a ``<think>…</think>`` block, so the answer is the text after ``</think>``.

What this module decides -- which attempts are scored at all, and which text the judge reads -- is part
of the frozen side: ``autodata.frozen`` covers it (with the rest of the runtime) in the frozen hash.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

OPEN, CLOSE = "<think>", "</think>"

PROBLEM_CODES = (
    "content_filter",
    "provider_error",
    "no_message",
    "reasoning_only",
    "unclosed_think",
    "empty",
    "truncated",
)

# Problems that leave a reply without any answer: every code but ``truncated`` (whose partial text a
# structured parser may still repair). Such a reply is never served from the call cache: a resumed or
# repeated run asks the server again (same request, same seed) instead of replaying the useless reply,
# while every reply that holds an answer -- including those of the re-samples drawn to replace these,
# whose sample indices are fixed -- is replayed, so a run is still reproducible from the cache.
NO_ANSWER = frozenset(PROBLEM_CODES) - {"truncated"}


@dataclass(frozen=True, slots=True)
class Split:
    """``text`` split into the answer and the reasoning before it; ``unclosed`` when ``<think>`` never closed."""

    answer: str
    reasoning: str | None
    unclosed: bool = False


def split_reasoning(text: str) -> Split:
    """Separate leading reasoning from the answer.

    ``<think>r</think>a`` and the template-opened ``r</think>a`` both give answer ``a``, reasoning
    ``r``; ``<think>r`` (never closed) gives an empty answer, reasoning ``r`` and ``unclosed``; any
    other text is all answer. Only a ``</think>`` with no earlier ``<think>`` counts as template-opened.
    """
    stripped = text.lstrip()
    if stripped.startswith(OPEN):
        rest = stripped[len(OPEN) :]
        end = rest.find(CLOSE)
        if end < 0:
            return Split("", rest.strip(), unclosed=True)
        return Split(rest[end + len(CLOSE) :].lstrip(), rest[:end].strip())
    end = text.find(CLOSE)
    if end >= 0 and OPEN not in text[:end]:
        return Split(text[end + len(CLOSE) :].lstrip(), text[:end].strip())
    return Split(text, None)


def error_message(err: Any) -> str:
    """The human part of an ``error`` value (an object with ``message``/``code``, or a string)."""
    if isinstance(err, dict):
        msg = err.get("message") or err.get("detail") or ""
        code = err.get("code")
        meta = err.get("metadata") if isinstance(err.get("metadata"), dict) else {}
        raw = meta.get("raw") if meta else None
        parts = [str(msg)] if msg else []
        if code not in (None, ""):
            parts.append(f"(code {code})")
        if raw:
            parts.append(f"upstream: {str(raw)[:200]}")
        return " ".join(parts) or str(err)[:300]
    return str(err)[:300]


@dataclass(slots=True)
class ReadReply:
    text: str
    reasoning: str | None
    finish_reason: str | None
    problem: str | None


def read_reply(data: dict[str, Any]) -> ReadReply:
    """The answer of ``choices[0]`` (or why there is none). Raises TypeError/ValueError for a body that
    is not a chat completion at all (the caller retries those as a server glitch)."""
    choices = data.get("choices")
    if not choices:
        if "error" in data:
            return ReadReply("", None, None, f"provider_error: {error_message(data['error'])}")
        raise ValueError("no choices")
    choice = choices[0]
    if not isinstance(choice, dict):
        raise TypeError(f"choices[0] is {type(choice).__name__}")
    finish = choice.get("finish_reason")
    finish = str(finish) if finish is not None else None
    if finish == "error" or choice.get("error"):
        why = error_message(choice.get("error")) if choice.get("error") else "finish_reason error"
        return ReadReply("", None, finish, f"provider_error: {why}")
    msg = choice.get("message")
    if not isinstance(msg, dict):
        return ReadReply("", None, finish, f"no_message: the choice has no message (finish_reason {finish})")
    content = msg.get("content")
    if isinstance(content, list):  # content parts: keep the text ones
        content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
    if content is not None and not isinstance(content, str):
        raise TypeError(f"message.content is {type(content).__name__}")
    text = content or ""
    reasoning = msg.get("reasoning_content") or msg.get("reasoning")
    if reasoning is not None and not isinstance(reasoning, str):
        reasoning = str(reasoning)
    unclosed = False
    if not reasoning and (OPEN in text or CLOSE in text):
        split = split_reasoning(text)
        text, reasoning, unclosed = split.answer, split.reasoning, split.unclosed
    problem = None
    cut = " -- cut off by the token limit; raise max_tokens for this model" if finish == "length" else ""
    if finish == "content_filter":
        problem = f"content_filter: finish_reason content_filter with {len(text)} characters of content"
    elif msg.get("refusal") and not text.strip():
        problem = f"content_filter: refusal: {str(msg['refusal'])[:200]}"
    elif unclosed:
        problem = f"unclosed_think: <think> never closed, no answer after the reasoning (finish_reason {finish}){cut}"
    elif not text.strip():
        if reasoning:
            problem = f"reasoning_only: no answer after {len(reasoning)} characters of reasoning{cut}"
        else:
            problem = f"empty: the reply has no text (finish_reason {finish}){cut}"
    elif finish == "length":
        problem = f"truncated: the answer{cut}"
    return ReadReply(text, reasoning or None, finish, problem)


def problem_code(problem: str | None) -> str | None:
    """``"reasoning_only: …"`` -> ``"reasoning_only"``."""
    return problem.split(":", 1)[0] if problem else None


def holds_answer(problem: str | None) -> bool:
    """False when a reply with this ``problem`` has no answer at all (:data:`NO_ANSWER`): not cached."""
    return problem_code(problem) not in NO_ANSWER
