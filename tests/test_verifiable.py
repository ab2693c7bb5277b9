"""Equivalence of short answers, checked in code with Math-Verify: a table of pairs, both directions.

Every row is (answer, reference, expected). Rows marked "issue" are the faults the hand-written checker
had (counted right when wrong, and wrong when right); rows citing huggingface/Math-Verify#N are the
public reports of where Math-Verify alone goes wrong, which ``autodata.judging.verifiable`` covers in its own code.
"""

from __future__ import annotations

import threading
import time

import pytest

from autodata.judging.verifiable import equivalent, final_answer

TRUE = True
FALSE = False

TABLE: list[tuple[str, str, bool]] = [
    # --- counted right when wrong (issue) ---
    ("3e-12", "5e-12", FALSE),  # an absolute tolerance swamps small numbers
    ("5e-12", "3e-12", FALSE),
    ("0.0000001", "0.0000002", FALSE),  # Math-Verify rounds to 6 places: huggingface/Math-Verify#21
    ("1/2^40", "1/2^39", FALSE),
    ("\\frac{1}{2^{40}}", "\\frac{1}{2^{39}}", FALSE),
    ("9.094947e-13", "1/2^39", FALSE),
    ("5!", "5", FALSE),  # the old text fallback stripped "!"
    ("5!", "120", TRUE),
    ("x \\neq 2", "x = 2", FALSE),
    ("x ≠ 2", "x = 2", FALSE),  # the old text fallback stripped "≠"
    ("x > 2", "x < 2", FALSE),
    ("We get \\boxed{5}, so the result is \\boxed{6", "5", FALSE),  # last box unterminated: no answer
    ("We get \\boxed{5}, then \\boxed{\\frac{1}{2", "5", FALSE),
    ("\\boxed{5} was wrong; the answer is \\boxed{7}", "5", FALSE),
    # --- counted wrong when right (issue) ---
    ("\\dfrac{1}{2}", "1/2", TRUE),  # huggingface/Math-Verify#70: a bare \dfrac is not extracted alone
    ("\\tfrac{1}{2}", "0.5", TRUE),
    ("\\frac12", "1/2", TRUE),
    ("\\boxed{\\frac{\\sqrt{3}}{2}}", "\\frac{\\sqrt{3}}{2}", TRUE),
    ("\\boxed{{1}+{2}}", "3", TRUE),  # nested braces inside \boxed{}
    ("So \\boxed{\\frac{\\sqrt{3}}{2}}.", "\\sqrt{3}/2", TRUE),
    ("The answer is B", "B", TRUE),
    ("b", "B", TRUE),  # letter choices in another case
    ("(c)", "C", TRUE),
    ("C) the third option", "C", TRUE),
    ("yes", "Yes", TRUE),  # yes/no in another case
    ("NO", "no", TRUE),
    ("$x = 5$", "5", TRUE),
    ("the answer is 4 ... on reflection the final answer is 5", "5", TRUE),  # the last stated answer
    ("the answer is 4 ... on reflection the final answer is 5", "4", FALSE),
    # --- numbers ---
    ("0.75", "3/4", TRUE),
    ("0.76", "3/4", FALSE),
    ("75%", "0.75", TRUE),
    ("10\\%", "0.1", TRUE),
    ("1,250", "1250", TRUE),
    ("1251", "1,250", FALSE),
    ("2.5e-3", "0.0025", TRUE),
    ("3 \\times 10^{-12}", "3e-12", TRUE),
    ("3 \\times 10^{-12}", "5e-12", FALSE),
    ("1e-12", "1.0000001e-12", TRUE),  # within the relative tolerance
    ("1e-12", "1.1e-12", FALSE),
    ("1000000", "1000001", FALSE),
    ("12345.6789", "12345.679", TRUE),  # relative, not absolute
    ("123456789", "123456790", FALSE),  # whole numbers: no tolerance
    ("-3", "−3", TRUE),
    ("0.333333", "1/3", TRUE),  # six significant digits written: 1/3 rounds to it
    ("0.33", "1/3", FALSE),
    ("3.14159", "\\pi", TRUE),
    ("3.14", "\\pi", FALSE),
    ("4.42105263158", "84/19", TRUE),
    ("4.421", "84/19", FALSE),
    ("0", "0.0", TRUE),
    ("0", "1e-15", FALSE),
    ("**73**", "73", TRUE),  # huggingface/Math-Verify#76: bold read as "73**"
    ("Final Answer: **73**", "73", TRUE),
    ("The answer is 42.", "42", TRUE),
    ("\\text{13}", "13", TRUE),  # huggingface/Math-Verify#37
    # --- expressions, equations, sets ---
    ("2x + 1", "1 + 2*x", TRUE),
    ("2x + 2", "2x + 1", FALSE),
    ("(x+1)(x-1)", "x^2 - 1", TRUE),
    ("x^2 + 1", "x^2 - 1", FALSE),
    ("x + y", "x", FALSE),
    ("\\sqrt{2}/2", "1/sqrt(2)", TRUE),
    ("2\\pi r", "2*pi*r", TRUE),
    ("x**2", "x^2", TRUE),
    ("3x-y+13=0", "3x+4y+14=0", FALSE),  # huggingface/Math-Verify#60
    ("2x+4y-3=0", "y = -\\frac{1}{2}x + \\frac{3}{4}", TRUE),  # huggingface/Math-Verify#26
    ("\\{1,2\\}", "\\{2,1\\}", TRUE),
    ("[2,5)", "[2,5)", TRUE),
    ("[2,5]", "[2,5)", FALSE),
    ("\\boxed{m \\geq \\sqrt{2}}", "m \\geq \\sqrt{2}", TRUE),
    ("\\frac{1}{2^{98}}", "\\frac{1}{2^{99}}", FALSE),  # huggingface/Math-Verify#14: tiny values
    ("\\frac{1}{2006!}", "\\frac{1}{2004!}", FALSE),  # huggingface/Math-Verify#14
    ("n=1, 2, 3", "n=2, 3, 4", FALSE),  # huggingface/Math-Verify#14: the equation's sides
    ("D = (0, 1.5)", "D = (0, 1)", FALSE),  # huggingface/Math-Verify#14
    ("2021", "\\pm 2021", FALSE),  # huggingface/Math-Verify#14
    ("1 + \\frac{1}{e}", "1 - \\frac{1}{e}", FALSE),  # huggingface/Math-Verify#14
    ("1728", "1331, 1728", FALSE),  # huggingface/Math-Verify#47: part of a multi-part answer
    ("1331, 1728", "1728, 1331", TRUE),
    ("-1 + exp(16)", "e^{16} - 1", TRUE),  # huggingface/Math-Verify#69
    ("pi/2", "\\dfrac{\\pi}{2}", TRUE),  # huggingface/Math-Verify#69
    ("-2*pi", "-2\\pi", TRUE),  # huggingface/Math-Verify#69
    # --- text answers ---
    ("Answer: Paris", "paris", TRUE),
    ("Answer: London", "Paris", FALSE),
    ("Sarip", "Paris", FALSE),  # Math-Verify alone reads both as the product a·i·p·r·s
    ("Париж", "париж", TRUE),
    ("5 meters", "5", FALSE),
    ("", "5", FALSE),
]


@pytest.mark.parametrize(("answer", "reference", "expected"), TABLE)
def test_equivalence_table(answer, reference, expected):
    assert equivalent(answer, reference) is expected


def test_the_table_is_large_and_goes_both_ways():
    assert len(TABLE) >= 60
    assert sum(1 for *_, e in TABLE if e) >= 25 and sum(1 for *_, e in TABLE if not e) >= 25


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
    assert final_answer("first \\boxed{1} then \\boxed{2") == ""
    assert final_answer("  12  ") == "12"
    assert final_answer("**Final answer:**\n\n$\\frac{3}{4}$") == "\\frac{3}{4}"
    assert final_answer("the answer is 4, no wait, the final answer is $5$.") == "5"
    for text in ("Final answer: \\frac{1}{2}", "\\boxed{\\frac{\\sqrt{3}}{2}}", "**73**", "x = 5"):
        once = final_answer(text)
        assert final_answer(once) == once  # the loop stores extracted answers and compares them again


def test_degenerate_answers_are_compared_as_text_not_parsed():
    assert equivalent("1" + "+1" * 3000, "3001") is False  # no RecursionError from a model's runaway output
    assert equivalent("-" * 3000 + "1", "1") is False
    assert equivalent("Final answer: " + "(" * 120 + "2" + ")" * 120, "2") is False  # too deep to parse
    assert equivalent("Final answer: " + "(" * 4 + "2" + ")" * 4, "2") is True


def test_a_long_response_without_a_marker_goes_to_math_verify_extraction():
    reasoning = "Let us think.\n" + "We add the terms one by one and check each step.\n" * 10
    assert equivalent(reasoning + "Altogether that gives $\\frac{3}{4}$.", "0.75") is True
    assert equivalent(reasoning + "Altogether that gives $\\frac{2}{3}$.", "0.75") is False


@pytest.mark.parametrize("huge", ["10^{10^{10}}", "2^{2^{2^{100}}}", "(10^{100})!", "99999!", "2**100000000"])
def test_numbers_too_big_to_build_are_not_evaluated_even_off_the_main_thread(huge):
    """SymPy evaluates integer powers and factorials eagerly; off the main thread no signal can stop it."""
    results: list[bool] = []
    t = threading.Thread(target=lambda: results.append(equivalent(huge, "1")))
    started = time.monotonic()
    t.start()
    t.join(timeout=60)
    assert results == [False] and time.monotonic() - started < 30
    assert equivalent(huge, huge) is True  # the same text is still the same answer


def test_ordinary_powers_and_factorials_still_evaluate():
    assert equivalent("2^{10}", "1024") and equivalent("10!", "3628800") and equivalent("e^{x^2}", "\\exp(x^2)")


def test_works_off_the_main_thread():
    """Math-Verify's signal.alarm timeouts raise outside the main thread; equivalent must not."""
    results: list[bool] = []
    t = threading.Thread(target=lambda: results.extend([equivalent("\\dfrac{1}{2}", "0.5"), equivalent("5!", "5")]))
    t.start()
    t.join(timeout=60)
    assert results == [True, False]


def test_an_outer_timer_survives_and_a_slow_check_is_cut(monkeypatch):
    """Math-Verify's own signal.alarm would cancel a timer already armed (pytest-timeout's, a trainer's)."""
    import signal

    from autodata.judging import verifiable

    fired: list[int] = []
    old = signal.signal(signal.SIGALRM, lambda *_: fired.append(1))
    signal.setitimer(signal.ITIMER_REAL, 30)
    try:
        assert equivalent("\\dfrac{1}{2}", "0.5") is True
        left, _ = signal.getitimer(signal.ITIMER_REAL)
        assert 0 < left <= 30  # still armed after the check
        monkeypatch.setattr(verifiable, "TIMEOUT_SECONDS", 0.05)
        monkeypatch.setattr(verifiable, "_equivalent", lambda a, r: time.sleep(5) or True)
        started = time.monotonic()
        assert equivalent("1", "1") is False  # out of time: not equivalent
        assert time.monotonic() - started < 2
        assert signal.getitimer(signal.ITIMER_REAL)[0] > 0 and not fired
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
