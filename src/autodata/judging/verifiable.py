"""Answer equivalence for the ``verifiable`` profile, checked in code rather than by a judge.

Parsing and comparing mathematics is Hugging Face's Math-Verify (``math_verify.parse`` and
``math_verify.verify``): LaTeX and plain answers become SymPy objects (``\\dfrac``, ``\\tfrac``,
``\\frac12``, nested braces, ``\\sqrt``, ``5!``, percentages, sets, intervals, equations such as
``x = 5`` against ``5``, relations such as ``x \\neq 2`` against ``x = 2``), compared symbolically. Nothing
is ever evaluated as Python, so a model's answer cannot run code.

Our own code does only what Math-Verify does not do, or does differently from what this profile needs:

- **Which answer a response commits to** (:func:`final_answer`): the last ``\\boxed{}`` with balanced
  braces, and *no answer* when the last ``\\boxed{`` is unterminated (Math-Verify would credit an earlier
  box); otherwise the text after the *last* "answer is" / "final answer:" marker, so "the answer is 4 …
  the final answer is 5" is 5; Markdown bold (``**73**``) is unwrapped (Math-Verify reads ``73**``,
  huggingface/Math-Verify#76). A long response with no marker goes to Math-Verify's own extraction.
- **Numbers compared with a relative tolerance** (:data:`REL_TOL`): Math-Verify rounds floats to 6
  decimal places, so ``0.0000001`` equals ``0.0000002`` there (huggingface/Math-Verify#21) and
  ``3e-12`` equals ``5e-12``; it also reads plain ``3e-12`` as ``3·e − 12``. Plain numbers (``1,250``,
  ``2.5e-3``, ``75%``) are read here, exactly (``Decimal``), and two numeric values agree when they
  differ by at most ``REL_TOL`` of the larger, or when one is a decimal written to at least
  :data:`SIG_DIGITS` significant digits that the other rounds to (``0.333333`` for 1/3, ``3.14159``
  for π).
- **Letter choices and yes/no** in any case (``B`` vs ``(b)``, ``Yes`` vs ``yes``): when the reference is
  a choice letter or yes/no/true/false, the answer must be the same one.
- **Text answers** (``Paris`` vs ``paris``): compared as case-folded text, never as a product of
  one-letter symbols (Math-Verify reads ``Paris`` as ``a·i·p·r·s``, equal to any anagram).

Time limits. Math-Verify's own timeouts call ``signal.alarm``, which raises outside the main thread (a
worker thread: an executor, a trainer's reward pool) and, in the main thread, cancels any timer already
armed (``pytest-timeout``'s, a trainer's watchdog). So Math-Verify is always called with its timeouts
off (``parsing_timeout=None``, ``timeout_seconds=None``) and :func:`equivalent` sets one deadline of its
own (:data:`TIMEOUT_SECONDS`, ``setitimer``) in the main thread, restoring the timer it found; an answer
that runs out of time is not equivalent. Off the main thread no signal can be used; there the input
length limit (:data:`MAX_EXPRESSION_CHARS`), the bracket depth limit (:data:`MAX_NESTING`) and the
size limits on exponents and factorials (:data:`MAX_EXPONENT`, :data:`MAX_FACTORIAL`) bound the work.
"""

from __future__ import annotations

import contextlib
import logging
import re
import signal
import threading
import time
import unicodedata
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from typing import Any

REL_TOL = 1e-6  # two numbers agree when |a − b| <= REL_TOL · max(|a|, |b|)
SIG_DIGITS = 6  # a decimal written to at least this many significant digits matches a value that rounds to it
MAX_EXPRESSION_CHARS = 300  # a final answer longer than this is compared as text, never parsed
TAIL_CHARS = 1000  # a long response without an answer marker: Math-Verify extracts from its last characters
MAX_EXPONENT = 10_000  # a larger integer exponent is not evaluated (see _too_big)
MAX_FACTORIAL = 1_000  # nor a larger factorial
MAX_NESTING = 5  # deeper brackets are not parsed (Math-Verify's parse time doubles per level beyond ~4)
TIMEOUT_SECONDS = 10  # a safety net for one check (main thread only); the limits above bound the work

_MARKER = re.compile(r"(?:final\s+answer|answer)\s*(?:is\s*:?|:|=)\s*", re.IGNORECASE)
_BOX = re.compile(r"\\(?:boxed|fbox)\s*\{")
_NUMBER = re.compile(r"[+-]?(?:\d{1,3}(?:,\d{3})+|\d+)?(?:\.\d+)?(?:[eE][+-]?\d+)?")
_CHOICE = re.compile(r"\(?([A-Za-z])\)?(?:[.:)]\s.*|[.:)])?", re.DOTALL)
_REFERENCE_CHOICE = re.compile(r"\(([A-Za-z])\)|([A-Z])(?:[.:)](?:\s.*)?)?", re.DOTALL)
_YES_NO = {"yes", "no", "true", "false"}
_FUNCTION_WORDS = re.compile(r"\b(?:sqrt|cbrt|sin|cos|tan|cot|sec|csc|arc\w+|sinh|cosh|tanh|log|ln|exp|pi|infty|inf)\b")


def _boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{…}``; ``""`` when that box is never closed; None when there is none."""
    starts = [m.end() for m in _BOX.finditer(text)]
    if not starts:
        return None
    depth, i = 1, starts[-1]
    while i < len(text):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return text[starts[-1] : i].strip()
        i += 1
    return ""  # the response's last word is unterminated: it committed to nothing


def _unwrap(span: str) -> str:
    s = span.strip()
    for _ in range(3):
        before = s
        s = s.strip().rstrip(".").strip()
        if s.startswith("**") and s.endswith("**") and len(s) > 4:
            s = s[2:-2]
        for left, right in (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")):
            if s.startswith(left) and s.endswith(right) and len(s) > len(left) + len(right):
                s = s[len(left) : -len(right)]
        if s == before:
            break
    return s.strip()


def final_answer(text: str) -> str:
    """The answer a response commits to, as a string (``""`` when it committed to none).

    The last ``\\boxed{}`` (balanced braces; ``""`` if the last one is unterminated), else what follows
    the last "answer is" / "Answer:" / "final answer =" on its line, else the whole text. Markdown bold,
    ``$…$`` and a trailing period are removed. Idempotent: ``final_answer(final_answer(t)) == final_answer(t)``.
    """
    box = _boxed(text)
    if box is not None:
        return _unwrap(box) if box else ""
    markers = list(_MARKER.finditer(text))
    if markers:
        last = markers[-1]
        rest = text[last.end() :].split("\n")
        # "**Final answer:**" may stand alone on its line, its value on the next
        line = next((x for x in rest if x.strip().strip("*_").strip()), "")
        inner = _boxed(line)
        return _unwrap(line if inner is None else inner)
    return _unwrap(text)


def _text(s: str) -> str:
    s = unicodedata.normalize("NFKC", s).casefold()
    s = re.sub(r"\\text\{([^{}]*)\}", r"\1", s)
    return " ".join(s.replace("$", " ").split()).strip(". ")


def _choice(s: str, *, reference: bool = False) -> str | None:
    """``b`` for ``B``, ``(b)``, ``B.``, ``B) the text of option B``; ``yes``/``no``/``true``/``false``.

    A reference names a choice with a capital letter or in parentheses (a lone ``x`` or ``e`` is a value).
    """
    t = _text(s).strip("*").strip()
    if t in _YES_NO:
        return t
    if reference:
        m = _REFERENCE_CHOICE.fullmatch(unicodedata.normalize("NFKC", s).strip().strip("*$ ").rstrip("."))
        return next(g for g in m.groups() if g).casefold() if m else None
    m = _CHOICE.fullmatch(t)
    return m.group(1).casefold() if m else None


def _plain_number(s: str) -> tuple[Decimal, int] | None:
    """(value, significant digits written) of ``1,250``, ``-2.5e-3``, ``75%``, ``−3``; None for anything else."""
    t = s.strip().replace("−", "-").replace("\\%", "%").replace(" ", "")
    pct = t.endswith("%")
    t = t[:-1] if pct else t
    if not t or not _NUMBER.fullmatch(t) or not re.search(r"\d", t):
        return None
    try:
        value = Decimal(t.replace(",", ""))
    except InvalidOperation:  # pragma: no cover - the pattern admits only what Decimal reads
        return None
    mantissa = re.sub(r"[eE].*", "", t).lstrip("+-").replace(",", "").replace(".", "").lstrip("0")
    return (value / 100 if pct else value), max(len(mantissa), 1)


def _close(x: Decimal, y: Decimal, digits: int) -> bool:
    """Relative tolerance, or ``y`` rounds to ``x`` when ``x`` was written with at least SIG_DIGITS digits."""
    if x == y:
        return True
    if x == x.to_integral_value() and y == y.to_integral_value():
        return False  # two whole numbers are equal or not; no tolerance
    if abs(x - y) <= Decimal(str(REL_TOL)) * max(abs(x), abs(y)):
        return True
    if digits >= SIG_DIGITS and x != 0 and y != 0:
        fmt = f"{{:.{digits - 1}e}}"
        return Decimal(fmt.format(y)) == Decimal(fmt.format(x))
    return False


def _nesting(s: str) -> int:
    depth = deepest = 0
    for ch in s:
        if ch in "([{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in ")]}":
            depth = max(depth - 1, 0)
    return deepest


_EXPONENT = re.compile(r"(?:\^|\*\*)\s*\{?\s*\(?\s*(\d+)")
_TOWER = re.compile(r"(?:\^|\*\*)\s*\{?\s*\(?\s*\d+\s*\)?\s*(?:\^|\*\*)")
_FACTORIAL = re.compile(r"(\d+)\s*!|[)}]\s*!")


def _too_big(s: str) -> bool:
    """A number SymPy would spend minutes or all memory building (``10^{10^{10}}``, ``99999!``): an
    exponent above MAX_EXPONENT, a numeric power tower, a factorial above MAX_FACTORIAL or of an
    expression. Such an answer is compared as text only; SymPy evaluates integer powers eagerly."""
    if _TOWER.search(s):
        return True
    if any(int(m.group(1)) > MAX_EXPONENT for m in _EXPONENT.finditer(s)):
        return True
    return any(m.group(1) is None or int(m.group(1)) > MAX_FACTORIAL for m in _FACTORIAL.finditer(s))


def _wordy(s: str) -> bool:
    """Prose rather than mathematics: a run of three or more letters that is no LaTeX command or function."""
    t = re.sub(r"\\[A-Za-z]+", " ", s)
    t = _FUNCTION_WORDS.sub(" ", t)
    return re.search(r"[^\W\d_]{3,}", t) is not None


def _to_latex(s: str) -> str:
    """Plain-text spellings Math-Verify's LaTeX reader does not take (``**``, ``pi``, ``×``)."""
    s = s.replace("**", "^").replace("×", "\\times ").replace("·", "\\cdot ").replace("−", "-")
    s = s.replace("∞", "\\infty ").replace("√", "\\sqrt")
    s = re.sub(r"(?<![\\A-Za-z])(exp|log|ln|sin|cos|tan)\s*\(", r"\\\1(", s)  # exp(16) is e^16, not e·x·p·16
    return re.sub(r"(?<![\\A-Za-z])pi\b", r"\\pi ", s)


class _OutOfTime(BaseException):
    """Raised by our SIGALRM handler; a BaseException so Math-Verify's ``except Exception`` lets it through."""


@contextlib.contextmanager
def _deadline(seconds: float) -> Iterator[None]:
    """SIGALRM after ``seconds`` in the main thread (nothing elsewhere); an outer timer is put back after."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield
        return

    def expire(signum: int, frame: object) -> None:
        raise _OutOfTime

    start = time.monotonic()
    outer_handler = signal.signal(signal.SIGALRM, expire)
    outer_left, outer_interval = signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, outer_handler)
        if outer_left > 0:  # someone else's timer was running: re-arm what is left of it
            left = max(outer_left - (time.monotonic() - start), 1e-3)
            signal.setitimer(signal.ITIMER_REAL, left, outer_interval)


class _QuietTimeoutNotice(logging.Filter):
    """Math-Verify warns once that its timeouts are off; here they are off on purpose (see module doc)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Timeout is disabled")


for _name in ("math_verify.parser", "math_verify.grader"):
    logging.getLogger(_name).addFilter(_QuietTimeoutNotice())


def _parse(span: str) -> list[Any]:
    from math_verify import LatexExtractionConfig, parse

    return parse(
        "\\boxed{" + _to_latex(span) + "}",
        [LatexExtractionConfig()],
        fallback_mode="no_fallback",
        parsing_timeout=None,  # type: ignore[arg-type]  # our own deadline: see the module docstring
    )


def _numeric(value: Any) -> Decimal | None:
    """A SymPy value as a Decimal when it is a finite real number (no symbols), else None."""
    import sympy

    if not isinstance(value, sympy.Basic) or value.free_symbols:
        return None
    try:
        v = sympy.N(value.doit(), 30)
        if not v.is_real or not v.is_finite or not v.is_number:
            return None
        return Decimal(str(v))
    except (TypeError, ValueError, ArithmeticError, AttributeError, InvalidOperation):
        return None


def _value(span: str, parsed: list[Any]) -> tuple[Decimal, int] | None:
    plain = _plain_number(span)
    if plain is not None:
        return plain
    v = _numeric(parsed[0]) if parsed else None
    return None if v is None else (v, 0)


def equivalent(answer: str, reference: str) -> bool:
    """True when the answer's final value equals the reference's (see the module docstring for how).

    ``answer`` is a model's response or its final answer; ``reference`` the reference answer. Not
    symmetric for equations (``x = 5`` answers ``5``; Math-Verify's gold-first order,
    huggingface/Math-Verify#25). Never raises on a model's output; an answer that cannot be read, or
    whose check runs past :data:`TIMEOUT_SECONDS` (main thread), is False.
    """
    import math_verify  # noqa: F401  # imported outside the deadline: an import cut short would stay broken

    try:
        with _deadline(TIMEOUT_SECONDS):
            return _equivalent(answer, reference)
    except _OutOfTime:
        return False


def _equivalent(answer: str, reference: str) -> bool:
    a, r = final_answer(answer), final_answer(reference)
    if not a or not r:
        return False
    if _text(a) == _text(r):
        return True
    if len(a) > MAX_EXPRESSION_CHARS or len(r) > MAX_EXPRESSION_CHARS:
        if a == _unwrap(answer) and len(a) > MAX_EXPRESSION_CHARS and "\n" in a:
            return _verify_extracted(answer, r)  # a long response with no marker: Math-Verify extracts
        return False  # a model's degenerate output must not reach the parser
    wanted = _choice(r, reference=True)
    if wanted is not None:
        return _choice(a) == wanted
    if _wordy(a) or _wordy(r):
        return False  # prose: the case-folded text comparison above was the test
    if _nesting(a) > MAX_NESTING or _nesting(r) > MAX_NESTING or _too_big(a) or _too_big(r):
        return False  # too costly to parse or evaluate (see MAX_NESTING, _too_big); the text test was made
    pa, pr = _plain_number(a), _plain_number(r)
    if pa is not None and pr is not None:
        return _close(pa[0], pr[0], pa[1]) or _close(pr[0], pa[0], pr[1])
    ga, gr = _parse_side(a), _parse_side(r)
    va, vr = _value(a, ga), _value(r, gr)
    if va is not None and vr is not None:
        return _close(va[0], vr[0], va[1]) or _close(vr[0], va[0], vr[1])
    if not ga or not gr:
        return False
    return _verify(gr, ga)


def _parse_side(span: str) -> list[Any]:
    """Math-Verify's reading of a final answer; a plain number is handed over in fixed-point notation
    (Math-Verify reads ``3e-12`` as ``3·e − 12``)."""
    plain = _plain_number(span)
    return _parse(format(plain[0], "f") if plain else span)


def _verify(gold: list[Any], target: list[Any]) -> bool:
    from math_verify import verify

    return bool(verify(gold, target, timeout_seconds=None))


def _verify_extracted(response: str, reference: str) -> bool:
    from math_verify import parse

    found = parse(response[-TAIL_CHARS:], parsing_timeout=None)  # type: ignore[arg-type]
    return bool(found) and _equivalent(str(found[-1]), reference)
