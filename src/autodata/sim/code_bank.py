"""The simulated code challenger's bank of programming tasks, each with real buggy variants.

Every task has a statement, a signature, a reference solution, a hidden test suite with edge cases
and typical wrong solutions of three kinds: an **off-by-one**, a **missing edge case** and a
**wrong type** (e.g. tuples where lists are due). Nothing here is scored by declaration: the
solutions run against the tests in the sandbox, so a buggy variant's pass rate is whatever running
it gives. ``difficulty`` is the latent difficulty the simulated solvers' skill is compared with.
``flawed`` variants of a task (a reference with a slip, tests that check nothing) exercise the
pre-solver check.
"""

# ruff: noqa: E501 - solutions and tests are kept as written, one source line per string
from __future__ import annotations

from dataclasses import dataclass, field

# Edits of a reference solution: (text, replacement) pairs, each text found exactly once.
Edits = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class CodeTask:
    name: str
    signature: str
    statement: str
    reference: str
    tests: str
    difficulty: float
    bugs: dict[str, str] = field(default_factory=dict)  # kind -> a wrong solution
    weak_tests: str = ""  # a suite a trivial stub passes (a flawed task the pre-solver check must reject)
    broken_reference: str = ""  # a reference with a slip (a flawed task the pre-solver check must reject)


def variant(reference: str, edits: Edits) -> str:
    """``reference`` with each edit applied in turn. Raises ValueError when an edit's text is not in the
    solution exactly once (a reference changed under its variants fails at import, not silently)."""
    out = reference
    for old, new in edits:
        if out.count(old) != 1:
            raise ValueError(f"variant edit {old!r} found {out.count(old)} times in {out!r}")
        out = out.replace(old, new)
    return out


def task(*, reference: str, bugs: dict[str, str | Edits], broken: Edits = (), **fields: object) -> CodeTask:
    """A :class:`CodeTask` whose wrong solutions are written as edits of its reference (a whole solution
    where the bug rewrites it); ``broken``: the edits that make its ``broken_reference``."""
    return CodeTask(
        reference=reference,
        bugs={kind: bug if isinstance(bug, str) else variant(reference, bug) for kind, bug in bugs.items()},
        broken_reference=variant(reference, broken) if broken else "",
        **fields,  # type: ignore[arg-type]
    )


BANK: tuple[CodeTask, ...] = (
    task(
        name="chunked",
        signature="def chunked(items: list, size: int) -> list[list]:",
        statement=(
            "Split a list into consecutive chunks of `size` items; the last chunk may be shorter. "
            "Every chunk is a list. An empty input gives an empty list. A size below 1 raises ValueError."
        ),
        reference=(
            "def chunked(items, size):\n"
            "    if size < 1:\n"
            "        raise ValueError('size must be at least 1')\n"
            "    return [list(items[i:i + size]) for i in range(0, len(items), size)]\n"
        ),
        tests=(
            "from solution import chunked\n\n"
            "def test_partial_last_chunk():\n    assert chunked([1, 2, 3, 4, 5], 2) == [[1, 2], [3, 4], [5]]\n\n"
            "def test_exact_division():\n    assert chunked([1, 2, 3, 4], 2) == [[1, 2], [3, 4]]\n\n"
            "def test_empty():\n    assert chunked([], 3) == []\n\n"
            "def test_size_larger_than_list():\n    assert chunked([1, 2], 5) == [[1, 2]]\n\n"
            "def test_bad_size_raises():\n"
            "    for bad in (0, -1):\n"
            "        try:\n            chunked([1, 2], bad)\n        except ValueError:\n            continue\n"
            "        raise AssertionError(f'size {bad} accepted')\n\n"
            "def test_tuple_input_gives_lists():\n    assert chunked((1, 2, 3), 3) == [[1, 2, 3]]\n"
        ),
        difficulty=0.35,
        bugs={
            "off-by-one": (("range(0, len(items), size)", "range(0, len(items) - size + 1, size)"),),
            "missing edge case": (
                ("    if size < 1:\n        raise ValueError('size must be at least 1')\n", ""),
                ("len(items), size)", "len(items), max(size, 1))"),
            ),
            "wrong type": (("[list(items", "[tuple(items"),),
        },
        weak_tests=(
            "from solution import chunked\n\n"
            "def test_runs():\n    chunked([1, 2, 3], 2)\n\n"
            "def test_runs_empty():\n    chunked([], 1)\n\n"
            "def test_runs_big():\n    chunked([1], 9)\n"
        ),
    ),
    task(
        name="normalize_name",
        signature="def normalize_name(name: str) -> str:",
        statement=(
            "Normalize a distribution name for comparison: every run of '-', '_' and '.' characters "
            "becomes a single '-', and the result is lower-case."
        ),
        reference="import re\n\ndef normalize_name(name):\n    return re.sub(r'[-_.]+', '-', name).lower()\n",
        tests=(
            "from solution import normalize_name\n\n"
            "def test_dot():\n    assert normalize_name('Foo.Bar') == 'foo-bar'\n\n"
            "def test_run_of_separators():\n    assert normalize_name('a__b') == 'a-b'\n\n"
            "def test_mixed_run():\n    assert normalize_name('A-_.b') == 'a-b'\n\n"
            "def test_plain():\n    assert normalize_name('simple') == 'simple'\n\n"
            "def test_empty():\n    assert normalize_name('') == ''\n\n"
            "def test_returns_str():\n    assert isinstance(normalize_name('X_Y'), str)\n"
        ),
        difficulty=0.45,
        bugs={
            "missing edge case": (("r'[-_.]+'", "r'[-_.]'"),),
            "off-by-one": (
                ("    return re.sub", "    out = re.sub"),
                (".lower()\n", ".lower()\n    return out[:-1] if out.endswith('-') or len(out) > 6 else out\n"),
            ),
            "wrong type": (("re.sub(r'[-_.]+', '-', name).lower()", "re.split(r'[-_.]+', name.lower())"),),
        },
        broken=(("r'[-_.]+'", "r'[-_]+'"),),
    ),
    task(
        name="running_max",
        signature="def running_max(values: list[float]) -> list[float]:",
        statement=(
            "Return the list of running maxima: element i is the largest of values[0..i]. "
            "An empty input gives an empty list; values may be negative."
        ),
        reference=(
            "def running_max(values):\n"
            "    out = []\n"
            "    for v in values:\n"
            "        out.append(v if not out or v > out[-1] else out[-1])\n"
            "    return out\n"
        ),
        tests=(
            "from solution import running_max\n\n"
            "def test_increasing_and_dips():\n    assert running_max([1, 3, 2, 5, 4]) == [1, 3, 3, 5, 5]\n\n"
            "def test_all_negative():\n    assert running_max([-5, -7, -2]) == [-5, -5, -2]\n\n"
            "def test_empty():\n    assert running_max([]) == []\n\n"
            "def test_single():\n    assert running_max([7]) == [7]\n\n"
            "def test_length_kept():\n    assert len(running_max([2, 2, 2, 2])) == 4\n"
        ),
        difficulty=0.3,
        bugs={
            "missing edge case": (
                ("    out = []\n", "    best, out = 0, []\n"),
                (
                    "        out.append(v if not out or v > out[-1] else out[-1])\n",
                    "        best = max(best, v)\n        out.append(best)\n",
                ),
            ),
            "off-by-one": ("def running_max(values):\n    return [max(values[:i]) for i in range(1, len(values))]\n"),
            "wrong type": "def running_max(values):\n    return tuple(max(values[:i + 1]) for i in range(len(values)))\n",
        },
    ),
    task(
        name="parse_version",
        signature="def parse_version(text: str) -> tuple[int, ...]:",
        statement=(
            "Parse a dotted release number such as '1.10.2' into a tuple of integers, so that versions "
            "compare numerically ('1.10' > '1.9'). Leading zeros are allowed ('1.02' is (1, 2)). "
            "Anything that is not dot-separated non-negative integers raises ValueError."
        ),
        reference=(
            "def parse_version(text):\n"
            "    parts = text.split('.')\n"
            "    if not text or not all(p.isdigit() for p in parts):\n"
            "        raise ValueError(f'not a release number: {text!r}')\n"
            "    return tuple(int(p) for p in parts)\n"
        ),
        tests=(
            "from solution import parse_version\n\n"
            "def test_three_parts():\n    assert parse_version('1.10.2') == (1, 10, 2)\n\n"
            "def test_numeric_order():\n    assert parse_version('1.10') > parse_version('1.9')\n\n"
            "def test_single():\n    assert parse_version('3') == (3,)\n\n"
            "def test_leading_zero():\n    assert parse_version('1.02') == (1, 2)\n\n"
            "def test_invalid_raises():\n"
            "    for bad in ('1.a', '', '1..2', '-1'):\n"
            "        try:\n            parse_version(bad)\n        except ValueError:\n            continue\n"
            "        raise AssertionError(f'{bad!r} accepted')\n"
        ),
        difficulty=0.55,
        bugs={
            "wrong type": (
                ("raise ValueError(f'not a release number: {text!r}')", "raise ValueError(text)"),
                ("tuple(int(p) for p in parts)", "tuple(parts)"),
            ),
            "missing edge case": ("def parse_version(text):\n    return tuple(int(p) for p in text.split('.') if p)\n"),
            "off-by-one": (
                ("raise ValueError(f'not a release number: {text!r}')", "raise ValueError(text)"),
                ("tuple(int(p) for p in parts)", "tuple(int(p) for p in parts[: max(1, len(parts) - 1)])"),
            ),
        },
        weak_tests=(
            "from solution import parse_version\n\n"
            "def test_callable():\n    assert callable(parse_version)\n\n"
            "def test_no_crash_a():\n    parse_version('1.2')\n\n"
            "def test_no_crash_b():\n    parse_version('3')\n"
        ),
    ),
    task(
        name="window_sums",
        signature="def window_sums(values: list[int], k: int) -> list[int]:",
        statement=(
            "Return the sums of every window of k consecutive values, left to right. A window longer "
            "than the list gives an empty list; k below 1 raises ValueError."
        ),
        reference=(
            "def window_sums(values, k):\n"
            "    if k < 1:\n"
            "        raise ValueError('k must be at least 1')\n"
            "    return [sum(values[i:i + k]) for i in range(len(values) - k + 1)]\n"
        ),
        tests=(
            "from solution import window_sums\n\n"
            "def test_basic():\n    assert window_sums([1, 2, 3, 4], 2) == [3, 5, 7]\n\n"
            "def test_whole_list():\n    assert window_sums([1, 2, 3], 3) == [6]\n\n"
            "def test_window_too_long():\n    assert window_sums([1, 2], 3) == []\n\n"
            "def test_k_one():\n    assert window_sums([4, -1], 1) == [4, -1]\n\n"
            "def test_bad_k_raises():\n"
            "    try:\n        window_sums([1, 2], 0)\n    except ValueError:\n        return\n"
            "    raise AssertionError('k=0 accepted')\n"
        ),
        difficulty=0.5,
        bugs={
            "off-by-one": (("range(len(values) - k + 1)", "range(len(values) - k)"),),
            "missing edge case": (("    if k < 1:\n        raise ValueError('k must be at least 1')\n", ""),),
            "wrong type": (
                (
                    "[sum(values[i:i + k]) for i in range(len(values) - k + 1)]",
                    "{i: sum(values[i:i + k]) for i in range(len(values) - k + 1)}",
                ),
            ),
        },
    ),
    task(
        name="merge_intervals",
        signature="def merge_intervals(intervals: list[list[int]]) -> list[list[int]]:",
        statement=(
            "Merge overlapping closed intervals [start, end] and return them sorted by start, each as a "
            "two-element list. Intervals that touch ([1, 2] and [2, 3]) merge; the input may be unsorted."
        ),
        reference=(
            "def merge_intervals(intervals):\n"
            "    out = []\n"
            "    for start, end in sorted(intervals):\n"
            "        if out and start <= out[-1][1]:\n"
            "            out[-1][1] = max(out[-1][1], end)\n"
            "        else:\n"
            "            out.append([start, end])\n"
            "    return out\n"
        ),
        tests=(
            "from solution import merge_intervals\n\n"
            "def test_overlap():\n    assert merge_intervals([[1, 3], [2, 6], [8, 10]]) == [[1, 6], [8, 10]]\n\n"
            "def test_touching_merge():\n    assert merge_intervals([[1, 2], [2, 3]]) == [[1, 3]]\n\n"
            "def test_unsorted_input():\n    assert merge_intervals([[5, 6], [1, 2]]) == [[1, 2], [5, 6]]\n\n"
            "def test_contained():\n    assert merge_intervals([[1, 10], [2, 3]]) == [[1, 10]]\n\n"
            "def test_empty():\n    assert merge_intervals([]) == []\n"
        ),
        difficulty=0.65,
        bugs={
            "off-by-one": (("start <= out[-1][1]", "start < out[-1][1]"),),
            "missing edge case": (
                ("in sorted(intervals):", "in intervals:"),
                ("out[-1][1] = max(out[-1][1], end)", "out[-1][1] = end"),
            ),
            "wrong type": (
                ("out[-1][1] = max(out[-1][1], end)", "out[-1] = (out[-1][0], max(out[-1][1], end))"),
                ("out.append([start, end])", "out.append((start, end))"),
            ),
        },
    ),
    task(
        name="to_roman",
        signature="def to_roman(n: int) -> str:",
        statement=(
            "Write n (1 to 3999) as a Roman numeral with the subtractive forms (IV, IX, XL, XC, CD, CM). "
            "n outside 1..3999 raises ValueError."
        ),
        reference=(
            "def to_roman(n):\n"
            "    if not 1 <= n <= 3999:\n"
            "        raise ValueError('n must be in 1..3999')\n"
            "    table = [(1000, 'M'), (900, 'CM'), (500, 'D'), (400, 'CD'), (100, 'C'), (90, 'XC'),\n"
            "             (50, 'L'), (40, 'XL'), (10, 'X'), (9, 'IX'), (5, 'V'), (4, 'IV'), (1, 'I')]\n"
            "    out = ''\n"
            "    for value, sym in table:\n"
            "        while n >= value:\n"
            "            out += sym\n"
            "            n -= value\n"
            "    return out\n"
        ),
        tests=(
            "from solution import to_roman\n\n"
            "def test_small():\n    assert to_roman(3) == 'III'\n\n"
            "def test_subtractive():\n    assert [to_roman(n) for n in (4, 9, 40, 90, 400, 900)] == "
            "['IV', 'IX', 'XL', 'XC', 'CD', 'CM']\n\n"
            "def test_year():\n    assert to_roman(1994) == 'MCMXCIV'\n\n"
            "def test_upper_bound():\n    assert to_roman(3999) == 'MMMCMXCIX'\n\n"
            "def test_out_of_range():\n"
            "    for bad in (0, 4000):\n"
            "        try:\n            to_roman(bad)\n        except ValueError:\n            continue\n"
            "        raise AssertionError(f'{bad} accepted')\n"
        ),
        difficulty=0.6,
        bugs={
            "missing edge case": (
                (
                    "    table = [(1000, 'M'), (900, 'CM'), (500, 'D'), (400, 'CD'), (100, 'C'), (90, 'XC'),\n"
                    "             (50, 'L'), (40, 'XL'), (10, 'X'), (9, 'IX'), (5, 'V'), (4, 'IV'), (1, 'I')]\n",
                    "",
                ),
                ("in table:", "in [(1000, 'M'), (500, 'D'), (100, 'C'), (50, 'L'), (10, 'X'), (5, 'V'), (1, 'I')]:"),
            ),
            "off-by-one": (("1 <= n <= 3999:", "1 <= n < 3999:"),),
            "wrong type": (("    out = ''\n", "    out = []\n"), ("out += sym", "out.append(sym)")),
        },
    ),
    task(
        name="summary_line",
        signature="def summary_line(docstring: str | None) -> str:",
        statement=(
            "Return a docstring's summary line: its first non-blank line with surrounding whitespace "
            "removed. None, an empty or an all-blank docstring gives ''."
        ),
        reference=(
            "def summary_line(docstring):\n"
            "    for line in (docstring or '').splitlines():\n"
            "        if line.strip():\n"
            "            return line.strip()\n"
            "    return ''\n"
        ),
        tests=(
            "from solution import summary_line\n\n"
            "def test_one_line():\n    assert summary_line('Return the sum.') == 'Return the sum.'\n\n"
            "def test_leading_blank_lines():\n    assert summary_line('\\n\\n   Do it.\\n\\n   More.') == 'Do it.'\n\n"
            "def test_none():\n    assert summary_line(None) == ''\n\n"
            "def test_blank():\n    assert summary_line('   \\n  ') == ''\n\n"
            "def test_indented():\n    assert summary_line('    Indented summary.   ') == 'Indented summary.'\n"
        ),
        difficulty=0.4,
        bugs={
            "missing edge case": "def summary_line(docstring):\n    return docstring.splitlines()[0].strip() if docstring else ''\n",
            "off-by-one": (
                "def summary_line(docstring):\n"
                "    lines = [l.strip() for l in (docstring or '').splitlines() if l.strip()]\n"
                "    return lines[1] if len(lines) > 1 else (lines[0] if lines else '')\n"
            ),
            "wrong type": (("    return ''\n", "    return None\n"),),
        },
    ),
)

BY_NAME = {t.name: t for t in BANK}
