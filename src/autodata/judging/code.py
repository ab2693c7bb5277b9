"""The ``code-tests`` scorer (``autodata.judging.scoring.CodeTests``) and its helpers.

An answer's code runs against the example's hidden unit tests.

The score of an attempt is the fraction of tests passed (``passed / total``), computed from the
sandbox's run (:mod:`autodata.sandbox`), never by a model; the one-criterion rubric's mark is 1 only
when every test passed. Code is taken from the answer's fenced block that defines the task's
function, else the whole answer when it is Python (:func:`autodata.sandbox.tasks.extract_code`);
an answer without code, or a run the sandbox itself could not do, is an attempt error
(:class:`~autodata.judging.scoring.Unscorable`), not a 0.

Before any solver is asked, :meth:`CodeTests.check_example` runs the reference solution against the
tests and three trivial stubs (``return None``, ``pass``, returning the input): the example is
rejected when the reference fails any test or a stub passes them all
(:func:`autodata.sandbox.tasks.check_task`).
"""

from __future__ import annotations

from typing import Any

from autodata.sandbox import SandboxResult

CODE_CRITERION = "the code passes the hidden unit tests (run in the sandbox)"
CODE_MIN_TESTS = 3  # fewer hidden tests than this and a task is rejected


def run_details(r: SandboxResult) -> dict[str, Any]:
    """What an attempt's record keeps of a sandbox run (passed/total, failures, stop, resources)."""
    return {
        "passed": r.passed,
        "total": r.total,
        "failures": [f.to_dict() for f in r.failures[:20]],
        "stop_reason": r.stop_reason,
        "stop_detail": r.stop_detail,
        "seconds": float(r.resources.get("host_seconds", r.resources.get("wall_seconds", 0.0))),
        "cpu_seconds": float(r.resources.get("cpu_seconds", 0.0)),
        "isolation": r.isolation,
    }


def summary_line(r: SandboxResult) -> str:
    line = f"passed {r.passed}/{r.total} tests"
    if r.stop_reason:
        line += f"; stopped ({r.stop_reason}): {r.stop_detail}"
    if r.failures:
        line += "; " + "; ".join(f"{f.test}: {f.error}" for f in r.failures[:3])
    return line[:1000]
