"""The judging side's typed model outputs: a rubric criterion, the judge's marks, the loop judge's verdict.

What a judge must return is validated against these before any mark is scored. The challenger's
example schema (``autodata.roles.schemas.ChallengerOutput``) holds its rubric as :class:`RubricItem`
items, so the rubric a judge marks against has exactly one shape.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Out(BaseModel):
    model_config = ConfigDict(extra="ignore")  # models add fields now and then; we keep what we asked for


class RubricItem(_Out):
    criterion: str = Field(min_length=1)
    weight: int = Field(description="Positive: points for meeting it. Negative: penalty when it is met.")
    category: str = ""


class CriterionMark(_Out):
    index: int = Field(ge=0)
    met: bool
    evidence: str = Field("", description="A short quote from the answer; empty when not met.")


class JudgeMarks(_Out):
    marks: list[CriterionMark]


class LoopVerdict(_Out):
    """The legal profile's loop judge: accept the evaluated example, or ask for an improvement."""

    verdict: Literal["accept", "improve"]
    reasons: list[str] = Field(default_factory=list)
