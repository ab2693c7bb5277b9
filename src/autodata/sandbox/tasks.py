"""Programming tasks: code out of an answer, a task's entry point, trivial stubs, the pre-solver check.

- :func:`extract_code`: the Python code of a solver's answer — the last fenced block that defines
  the task's function (or the last fenced block), else the whole answer when it parses as Python
  and defines a function; ``None`` when there is no code (an attempt error, never a 0).
- :func:`entry_point`: the function a task's reference solution defines (the signature's name).
- :func:`stubs`: trivial solutions a sound test suite must fail: ``return None``, a body of
  ``pass`` that raises nothing, and returning the first argument unchanged.
- :func:`check_task`: run the reference against the tests, then the stubs, in the sandbox,
  **before** any solver is asked; returns the problems (empty list: the task is sound).
"""

from __future__ import annotations

import ast
import asyncio
import re

from autodata.sandbox.types import Limits, SandboxExecutor, SandboxResult

_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)(?:\n```|\Z)", re.DOTALL)
_PY_TAGS = {"", "python", "py", "python3"}


def _defines(code: str, name: str | None) -> bool:
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return False
    defs = [n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
    return bool(defs) if name is None else name in defs


def extract_code(answer: str, name: str | None = None) -> str | None:
    """The code to run from a solver's answer, or ``None`` when the answer holds no code.

    ``name``: the task's entry point; a fenced block defining it wins over other blocks.
    """
    blocks = [(tag.lower(), body.strip("\n")) for tag, body in _FENCE.findall(answer)]
    blocks = [(t, b) for t, b in blocks if t in _PY_TAGS and b.strip()]
    for _, body in reversed(blocks):
        if _defines(body, name):
            return body + "\n"
    for _, body in reversed(blocks):
        if _defines(body, None):
            return body + "\n"
    if blocks:
        return None  # fenced text that is not code defining anything: nothing to run
    text = answer.strip()
    return text + "\n" if text and _defines(text, name) else None


def entry_point(reference: str, signature: str = "") -> tuple[str, list[str]] | None:
    """(function name, parameter names) of the task: the signature's function, else the reference's
    first top-level function. ``None`` when neither names one."""
    for src in (signature.strip() + ("\n    ..." if signature.strip().endswith(":") else ""), reference):
        try:
            tree = ast.parse(src)
        except SyntaxError:
            continue
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                params = [a.arg for a in node.args.posonlyargs + node.args.args]
                return node.name, params
    return None


def stubs(name: str) -> dict[str, str]:
    """Trivial solutions of function ``name`` that a sound test suite must not let pass."""
    return {
        "returns None": f"def {name}(*args, **kwargs):\n    return None\n",
        "body is pass": f"def {name}(*args, **kwargs):\n    pass\n",
        "returns its input": f"def {name}(*args, **kwargs):\n    return args[0] if args else None\n",
    }


async def check_task(
    executor: SandboxExecutor,
    reference: str,
    tests: str,
    *,
    signature: str = "",
    limits: Limits | None = None,
    min_tests: int = 3,
) -> tuple[list[str], dict[str, SandboxResult]]:
    """The task's problems found by running it, and each run's result (keys: ``reference`` and stubs).

    Problems: the tests collect fewer than ``min_tests`` tests; the reference fails any test (or the
    sandbox stopped it); a trivial stub passes every test. An infrastructure failure of the sandbox
    is raised as ``RuntimeError`` (it says nothing about the task).
    """
    problems: list[str] = []
    ep = entry_point(reference, signature)
    if ep is None:
        return ["the reference solution defines no function"], {}
    ref = await executor.arun(reference, tests, limits)
    if ref.infra_error:
        raise RuntimeError(ref.infra_error)
    runs = {"reference": ref}
    if ref.total < min_tests:
        problems.append(
            f"the hidden tests hold {ref.total} test(s); write at least {min_tests} "
            f"(edge cases included){': ' + ref.collect_error if ref.collect_error else ''}"
        )
        return problems, runs
    if not ref.all_passed:
        first = "; ".join(f"{f.test}: {f.error}" for f in ref.failures[:3])
        why = f" (stopped: {ref.stop_reason})" if ref.stop_reason else ""
        problems.append(f"the reference solution fails {ref.total - ref.passed} of {ref.total} tests{why}: {first}")
        return problems, runs
    stub_runs = await asyncio.gather(*(executor.arun(code, tests, limits) for code in stubs(ep[0]).values()))
    for (label, _), r in zip(stubs(ep[0]).items(), stub_runs, strict=True):
        runs[label] = r
        if r.infra_error:
            raise RuntimeError(r.infra_error)
        if r.all_passed:
            problems.append(f"the tests pass a trivial stub that {label.replace('body is', 'is')}: they check nothing")
    return problems, runs
