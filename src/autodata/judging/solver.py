"""Weak and strong solvers: the same frozen prompt, k attempts, only context and question shown."""

from __future__ import annotations

import asyncio

from autodata.judging.framing import fence
from autodata.judging.templates import render
from autodata.llm.runtime import ModelRuntime
from autodata.llm.types import CallError, Completion


def solver_messages(context: str, question: str, template: str = "solver.j2") -> list[dict[str, str]]:
    return [{"role": "user", "content": render(template, context=fence(context), question=fence(question))}]


def solve_each(
    runtime: ModelRuntime,
    endpoint: str,
    context: str,
    question: str,
    *,
    k: int,
    role: str,
    temperature: float | None = None,
    template: str = "solver.j2",
    first_sample: int = 0,
) -> list[asyncio.Future[Completion | CallError]]:
    """k independently cached attempts (sample i has its own seed; ``first_sample`` continues a series),
    started now, one future per attempt, each done as soon as its own answer is in (so its judge call can
    start while the other attempts still generate); a failed attempt's future holds its ``CallError``."""
    params = {"temperature": temperature} if temperature is not None else None
    messages = solver_messages(context, question, template)
    return runtime.complete_each(endpoint, messages, k, role=role, params=params, first_sample=first_sample)
