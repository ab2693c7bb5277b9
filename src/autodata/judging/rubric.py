"""Rubrics and the scoring formula: part of the trusted core.

The judge only marks each criterion met (1) or not met (0); the number is computed here:

    score = clip( Σ wᵢ·mᵢ / Σ_{wᵢ>0} wᵢ , 0, 1 )

Positive weights reward what a good answer contains, negative weights penalise what it must not
contain (a met negative criterion subtracts). Normalising by the positive weights alone makes a
perfect answer score 1 whatever penalties the rubric also lists.

This module imports nothing of the project and nothing the outer loop can edit: the optimizer is
never allowed to change how an answer is scored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from statistics import fmean

Mark = int  # 0 or 1


class RubricError(ValueError):
    """A rubric or a set of marks that cannot be scored; the message says what is wrong."""


@dataclass(frozen=True, slots=True)
class Criterion:
    criterion: str
    weight: int
    category: str = ""

    @property
    def negative(self) -> bool:
        return self.weight < 0


@dataclass(frozen=True, slots=True)
class RubricRules:
    """Structural checks on a challenger's rubric (the code half of the quality verifier).

    Counts of positive and negative criteria (inclusive bounds) and the range of absolute integer
    weights. The defaults follow the paper's meta-optimizer finding (facebookresearch/RAM,
    ``projects/autodata``): negative weights depressed strong-solver scores, so rubrics use
    positive integer weights capped at 7; negative criteria stay optional (``min_negative`` 0) but
    allowed. Set from ``loop.rubric``; a frozen setting the outer loop never edits.
    """

    min_positive: int = 3
    max_positive: int = 12
    min_negative: int = 0
    max_negative: int = 5
    min_abs_weight: int = 1
    max_abs_weight: int = 7

    def as_block(self) -> dict[str, int]:
        """The rules as shown to a challenger in its ``<rubric_rules>`` data block."""
        return {
            "min_positive": self.min_positive,
            "max_positive": self.max_positive,
            "min_negative": self.min_negative,
            "max_negative": self.max_negative,
            "min_weight": self.min_abs_weight,
            "max_weight": self.max_abs_weight,
        }


def positive_total(weights: Sequence[float]) -> float:
    return sum(w for w in weights if w > 0)


def score(weights: Sequence[float], marks: Sequence[Mark]) -> float:
    """One answer's score in [0, 1] from the rubric weights and the judge's 0/1 marks.

    A rubric without any positive weight has nothing an answer can earn: it scores 0.0 (and
    :func:`check_rubric` refuses such rubrics before any answer is judged).
    """
    if len(weights) != len(marks):
        raise RubricError(f"{len(marks)} marks for a rubric of {len(weights)} criteria")
    for i, m in enumerate(marks):
        if m not in (0, 1):
            raise RubricError(f"mark {i} is {m!r}; marks must be 0 or 1")
    total = positive_total(weights)
    if total <= 0:
        return 0.0
    raw = sum(w * int(m) for w, m in zip(weights, marks, strict=True))
    return min(1.0, max(0.0, raw / total))


def mean(scores: Sequence[float]) -> float:
    """Average over attempts; no attempts is an error, not a silent 0."""
    if not scores:
        raise RubricError("no attempts to average")
    return fmean(scores)


def check_rubric(criteria: Sequence[Criterion], rules: RubricRules = RubricRules()) -> list[str]:
    """Problems with a rubric's structure, as sentences for the challenger; empty when sound."""
    problems: list[str] = []
    pos = [c for c in criteria if c.weight > 0]
    neg = [c for c in criteria if c.weight < 0]
    zero = [i for i, c in enumerate(criteria) if c.weight == 0]
    if zero:
        problems.append(f"criteria {zero} have weight 0; every criterion needs a non-zero integer weight")
    if not rules.min_positive <= len(pos) <= rules.max_positive:
        problems.append(
            f"{len(pos)} positive criteria; between {rules.min_positive} and {rules.max_positive} are required"
        )
    if not rules.min_negative <= len(neg) <= rules.max_negative:
        problems.append(
            f"{len(neg)} negative criteria; between {rules.min_negative} and {rules.max_negative} are required"
        )
    for i, c in enumerate(criteria):
        if c.weight != 0 and not rules.min_abs_weight <= abs(c.weight) <= rules.max_abs_weight:
            problems.append(
                f"criterion {i} has weight {c.weight}; absolute weights must be "
                f"{rules.min_abs_weight} to {rules.max_abs_weight}"
            )
        if not c.criterion.strip():
            problems.append(f"criterion {i} has no text")
    seen: dict[str, int] = {}
    for i, c in enumerate(criteria):
        key = " ".join(c.criterion.lower().split())
        if key and key in seen:
            problems.append(f"criterion {i} repeats criterion {seen[key]}")
        seen.setdefault(key, i)
    return problems
