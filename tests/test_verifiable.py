"""Equivalence of short answers, checked in code: numbers, fractions, percentages, expressions."""

from __future__ import annotations

import pytest

from autodata.judging.verifiable import equivalent, final_answer


@pytest.mark.parametrize(
    ("answer", "reference"),
    [
        ("0.75", "3/4"),
        ("75%", "0.75"),
        ("1,250", "1250"),
        ("2.5e-3", "0.0025"),
        ("The answer is 42.", "42"),
        ("We compute ... so \\boxed{\\frac{1}{3}}", "1/3"),
        ("2x + 1", "1 + 2*x"),
        ("(x+1)(x-1)", "x^2 - 1"),
        ("\\sqrt{2}/2", "1/sqrt(2)"),
        ("2\\pi r", "2*pi*r"),
        ("Answer: Paris", "paris"),
        ("-3", "−3"),
    ],
)
def test_equivalent(answer, reference):
    assert equivalent(answer, reference)


@pytest.mark.parametrize(
    ("answer", "reference"),
    [
        ("0.76", "3/4"),
        ("2x + 2", "2x + 1"),
        ("x^2 + 1", "x^2 - 1"),
        ("x + y", "x"),
        ("Answer: London", "Paris"),
        ("1251", "1,250"),
    ],
)
def test_not_equivalent(answer, reference):
    assert not equivalent(answer, reference)


@pytest.mark.parametrize(
    "hostile",
    [
        "__import__('os').system('echo pwned')",
        "().__class__.__bases__[0].__subclasses__()",
        "open('/etc/passwd').read()",
        "9**9**9**9",
        "lambda: 1",
    ],
)
def test_model_output_is_never_executed(hostile, capfd):
    assert not equivalent(hostile, "1")
    assert "pwned" not in capfd.readouterr().out


def test_final_answer_extraction():
    assert final_answer("Working... Final answer: 7") == "7"
    assert final_answer("first \\boxed{1} then \\boxed{2}") == "2"
    assert final_answer("  12  ") == "12"


def test_degenerate_answers_are_compared_as_text_not_parsed():
    from autodata.judging.verifiable import equivalent

    assert equivalent("1" + "+1" * 3000, "3001") is False  # no RecursionError from a model's runaway output
    assert equivalent("-" * 3000 + "1", "1") is False
    assert equivalent("Final answer: " + "(" * 120 + "2" + ")" * 120, "2") is True
