"""Weak and strong solvers: the same frozen prompt, k attempts, only context and question shown."""

from __future__ import annotations

from autodata.llm.runtime import ModelRuntime
from autodata.llm.types import CallError, Completion
from autodata.prompts import render
from autodata.roles.framing import fence


def solver_messages(context: str, question: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": render("solver.j2", context=fence(context), question=question)}]


async def solve(
    runtime: ModelRuntime,
    endpoint: str,
    context: str,
    question: str,
    *,
    k: int,
    role: str,
    temperature: float | None = None,
) -> list[Completion | CallError]:
    """k independently cached attempts (sample i has its own seed)."""
    params = {"temperature": temperature} if temperature is not None else None
    return await runtime.complete_n(endpoint, solver_messages(context, question), k, role=role, params=params)
