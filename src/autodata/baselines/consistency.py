"""CoT Self-Instruct's Answer-Consistency filter, for answers that are right or wrong.

CoT Self-Instruct keeps a generated verifiable task only when a model, answering it k times, mostly
arrives at the generator's own answer: a task whose reference answer the answering model does not
reproduce is likely mis-stated or mis-solved. Here the k answers are the strong solver's attempts
(already paid for by the evaluation), compared with ``autodata.judging.verifiable.equivalent``.

Pure: no model calls, no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from autodata.judging.scoring import majority
from autodata.judging.verifiable import equivalent, final_answer


@dataclass(frozen=True, slots=True)
class Consistency:
    passed: bool
    agreeing: int  # answers equivalent to the reference
    total: int  # answers given, usable or not
    majority_answer: str | None  # the final answer of the largest group of equivalent answers

    def to_dict(self) -> dict[str, object]:
        return {
            "passed": self.passed,
            "agreeing": self.agreeing,
            "total": self.total,
            "majority_answer": self.majority_answer,
        }


def answer_consistency(
    reference: str,
    answers: Sequence[str | None],
) -> Consistency:
    """Passed when more than half of all k answers (unusable ones count against) match the reference.

    Answers are grouped by equivalence (``autodata.judging.scoring.majority``, as the loop groups them);
    the largest group (the first one on a tie) is the majority answer. A tie between two groups of k/2 is no majority.
    """
    finals = [final_answer(a) for a in answers if a and a.strip()]
    top, votes = majority(finals)
    agreeing = sum(equivalent(f, reference) for f in finals)
    passed = top is not None and 2 * votes > len(answers) and equivalent(top, reference)
    return Consistency(passed, agreeing, len(answers), top)
