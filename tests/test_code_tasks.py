"""Programming tasks: extracting code, the pre-solver check, and the simulator's bank (which really runs)."""

from __future__ import annotations

import asyncio

import pytest

from autodata.sandbox import Limits, SubprocessExecutor, make_executor
from autodata.sandbox.tasks import check_task, entry_point, extract_code, stubs
from autodata.sim.code_bank import BANK

FAST = Limits(cpu_seconds=3, wall_seconds=20)  # generous wall time: CI machines are shared


def test_extract_code_prefers_the_fenced_block_that_defines_the_function():
    answer = "Here:\n```python\nimport os\n```\nand\n```python\ndef f(x):\n    return x\n```\nDone."
    assert extract_code(answer, "f") == "def f(x):\n    return x\n"
    two = "```py\ndef g():\n    pass\n```\n```\ndef f():\n    return 1\n```"
    assert extract_code(two, "f").startswith("def f")
    assert extract_code(two, "h").startswith("def f")  # no block defines h: the last that defines anything
    assert extract_code("def f(x):\n    return x * 2", "f") == "def f(x):\n    return x * 2\n"  # the whole answer


def test_an_answer_without_code_has_none():
    assert extract_code("I would loop over the list and add the items.", "f") is None
    assert extract_code("```\nthe answer is 42\n```", "f") is None
    assert extract_code("", "f") is None
    assert extract_code("```python\n```", "f") is None
    assert extract_code("```text\ndef f(): pass\n```", "f") is None  # not a code block


def test_entry_point_and_stubs():
    assert entry_point("def helper():\n    pass\n\ndef main(a, b=1):\n    pass\n") == ("helper", [])
    assert entry_point("x = 1\n", "def solve(items: list, k: int) -> int:") == ("solve", ["items", "k"])
    assert entry_point("x = 1\n") is None
    assert set(stubs("f")) == {"returns None", "body is pass", "returns its input"}


def test_check_task_rejects_a_failing_reference_a_vacuous_suite_and_too_few_tests():
    ex = make_executor("subprocess", FAST)
    t = next(t for t in BANK if t.broken_reference)
    problems, runs = asyncio.run(check_task(ex, t.broken_reference, t.tests, signature=t.signature))
    assert problems and "reference solution fails" in problems[0] and not runs["reference"].all_passed
    t = next(t for t in BANK if t.weak_tests)
    problems, _ = asyncio.run(check_task(ex, t.reference, t.weak_tests, signature=t.signature))
    assert any("trivial stub" in p for p in problems)
    problems, _ = asyncio.run(check_task(ex, t.reference, "from solution import *\nassert True\n"))
    assert "at least 3" in problems[0]
    problems, _ = asyncio.run(check_task(ex, "x = 1\n", t.tests))
    assert problems == ["the reference solution defines no function"]


def test_check_task_raises_on_an_infrastructure_failure():
    ex = make_executor("http", FAST, url="http://127.0.0.1:9")  # nothing listens: not the task's fault
    with pytest.raises(RuntimeError, match="failed"):
        asyncio.run(check_task(ex, BANK[0].reference, BANK[0].tests))


def test_the_simulator_bank_is_sound_and_its_bugs_really_fail():
    """Every reference passes its tests and no stub does; every bug fails some test but not by
    declaration: the rates are what running them gives."""
    ex = SubprocessExecutor(FAST)

    async def go() -> None:
        for t in BANK:
            problems, _ = await check_task(ex, t.reference, t.tests, signature=t.signature)
            assert problems == [], (t.name, problems)
            assert set(t.bugs) == {"off-by-one", "missing edge case", "wrong type"}
            rates = await asyncio.gather(*(ex.arun(code, t.tests) for code in t.bugs.values()))
            for kind, r in zip(t.bugs, rates, strict=True):
                assert r.total >= 5 and r.passed < r.total, (t.name, kind)

    asyncio.run(go())


def test_a_bank_variant_is_its_reference_edited_and_a_stale_edit_fails():
    """Wrong solutions are written as edits of the reference; an edit whose text is not there exactly once
    (the reference changed under it) raises instead of leaving a variant that equals the reference."""
    from autodata.sim.code_bank import BY_NAME, variant

    to_roman = BY_NAME["to_roman"]
    assert to_roman.bugs["off-by-one"] == to_roman.reference.replace("n <= 3999", "n < 3999")
    with pytest.raises(ValueError, match="found 0 times"):
        variant(to_roman.reference, (("no such text", "x"),))
    with pytest.raises(ValueError, match="found 2 times"):
        variant("a a", (("a", "b"),))
