"""Answer equivalence for the ``verifiable`` profile, checked in code rather than by a judge.

A short final answer is compared with the reference as a number (``0.75``, ``3/4``, ``75%``,
``1,250``, ``2.5e-3``), or as an expression (``2x + 1`` vs ``1 + 2*x``): both sides are parsed into
a restricted syntax tree (numbers, variables, + - * / ^, a few named functions; nothing else is
ever evaluated, so a model's answer cannot run code) and compared at several random points.
Anything that parses as neither is compared as normalised text.
"""

from __future__ import annotations

import ast
import math
import random
import re
from collections.abc import Callable

REL_TOL = 1e-6
ABS_TOL = 1e-9

_FUNCTIONS: dict[str, Callable[..., float]] = {
    "sqrt": math.sqrt,
    "exp": math.exp,
    "log": math.log,
    "ln": math.log,
    "sin": math.sin,
    "cos": math.cos,
    "tan": math.tan,
    "abs": abs,
}
_CONSTANTS = {"pi": math.pi, "e": math.e}
_FINAL = (
    re.compile(r"\\boxed\{((?:[^{}]|\{[^{}]*\})*)\}"),
    re.compile(r"(?:final answer|answer)\s*(?:is|:|=)\s*(.+?)\s*(?:\.\s*$|$)", re.IGNORECASE | re.MULTILINE),
)


class _Unsupported(ValueError):
    pass


def final_answer(text: str) -> str:
    """The answer a response commits to: a ``\\boxed{}`` value, an "Answer: …" line, or the text itself."""
    for pattern in _FINAL:
        found = pattern.findall(text)
        if found:
            return found[-1].strip()
    return text.strip()


def _normalise(expr: str) -> str:
    s = expr.strip().strip("$").strip()
    s = s.replace("\\left", "").replace("\\right", "").replace("\\cdot", "*").replace("\\times", "*")
    s = re.sub(r"\\frac\{([^{}]*)\}\{([^{}]*)\}", r"((\1)/(\2))", s)
    s = re.sub(r"\\sqrt\{([^{}]*)\}", r"sqrt(\1)", s)
    s = s.replace("\\pi", "pi").replace("{", "(").replace("}", ")").replace("^", "**").replace("−", "-")
    s = re.sub(r"(?<=\d),(?=\d{3}\b)", "", s)  # 1,250 -> 1250
    s = re.sub(r"(\d+(?:\.\d+)?)\s*%", r"(\1/100)", s)
    s = re.sub(r"(\d)\s*([A-Za-z(])", r"\1*\2", s)  # 2x -> 2*x, 3(x+1) -> 3*(x+1)
    s = re.sub(r"\)\s*([\w(])", r")*\1", s)  # (x+1)(x-1) -> (x+1)*(x-1)
    s = re.sub(r"(\d)\s*\*\s*e\s*\*?\s*([+-]?\d)", r"\1e\2", s)  # undo 2*e-3 from 2e-3
    return s


def _compile(expr: str) -> tuple[Callable[[dict[str, float]], float], set[str]]:
    try:
        tree = ast.parse(_normalise(expr), mode="eval")
    except SyntaxError as exc:
        raise _Unsupported(str(exc)) from None
    names: set[str] = set()

    def ev(node: ast.AST, env: dict[str, float]) -> float:
        if isinstance(node, ast.Expression):
            return ev(node.body, env)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
            return float(node.value)
        if isinstance(node, ast.Name):
            if node.id in _CONSTANTS:
                return _CONSTANTS[node.id]
            return env[node.id]
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.UAdd, ast.USub)):
            v = ev(node.operand, env)
            return v if isinstance(node.op, ast.UAdd) else -v
        if isinstance(node, ast.BinOp):
            a, b = ev(node.left, env), ev(node.right, env)
            if isinstance(node.op, ast.Add):
                return a + b
            if isinstance(node.op, ast.Sub):
                return a - b
            if isinstance(node.op, ast.Mult):
                return a * b
            if isinstance(node.op, ast.Div):
                return a / b
            if isinstance(node.op, ast.Pow):
                if abs(b) > 64:
                    raise _Unsupported("exponent too large")
                return a**b
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in _FUNCTIONS
            and not node.keywords
            and len(node.args) == 1
        ):
            return float(_FUNCTIONS[node.func.id](ev(node.args[0], env)))
        raise _Unsupported(f"unsupported syntax: {type(node).__name__}")

    def check(node: ast.AST) -> None:
        for child in ast.walk(node):
            if isinstance(child, ast.Name) and child.id not in _CONSTANTS and child.id not in _FUNCTIONS:
                if len(child.id) > 3:
                    raise _Unsupported(f"{child.id!r} is not a variable")
                names.add(child.id)
            elif isinstance(child, ast.Call) and not (isinstance(child.func, ast.Name) and child.func.id in _FUNCTIONS):
                raise _Unsupported("only sqrt, exp, log, sin, cos, tan and abs may be called")

    check(tree)
    return (lambda env: ev(tree, env)), names


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=REL_TOL, abs_tol=ABS_TOL)


MAX_EXPRESSION_CHARS = 300  # a final answer longer than this is compared as text, never parsed


def equivalent(answer: str, reference: str, *, points: int = 6, seed: int = 0) -> bool:
    """True when the answer's final value equals the reference (numerically or as an expression)."""
    a_text, r_text = final_answer(answer), final_answer(reference)
    if len(a_text) > MAX_EXPRESSION_CHARS or len(r_text) > MAX_EXPRESSION_CHARS:
        return _text(a_text) == _text(r_text)  # a model's degenerate output must not reach the parser
    try:
        fa, va = _compile(a_text)
        fr, vr = _compile(r_text)
    except (_Unsupported, RecursionError, MemoryError, ValueError):
        return _text(a_text) == _text(r_text)
    if va != vr:
        return False
    rng = random.Random(seed)
    agreed = 0
    for _ in range(points * 3):
        env = {v: rng.uniform(0.5, 3.0) for v in va}
        try:
            x, y = fa(env), fr(env)
        except (ZeroDivisionError, ValueError, OverflowError, _Unsupported):
            continue
        if isinstance(x, complex) or isinstance(y, complex):
            continue
        if not _close(x, y):
            return False
        agreed += 1
        if agreed >= (1 if not va else points):
            return True
    return False


def _text(s: str) -> str:
    return " ".join(re.sub(r"[^\w\s.-]", " ", s.lower()).split()).strip(". ")
