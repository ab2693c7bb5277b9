"""Checkable constraints of the ``instruction`` profile, checked in code (in the spirit of IFEval).

IFEval (Zhou et al., 2023, "Instruction-Following Evaluation for Large Language Models",
arXiv:2311.07911) scores instruction following with constraints a program can verify. The kinds
here, each a :class:`Constraint` (``kind`` and ``value``):

- ``max_words`` / ``min_words`` (int): the answer's word count (whitespace-separated tokens that
  contain a letter or digit) is at most / at least ``value``;
- ``json`` (no value): the whole answer (a fenced ```json block is accepted) parses as JSON;
- ``include_keywords`` / ``exclude_keywords`` (list of str): every / none of the words occurs in the
  answer (case-insensitive, whole words);
- ``bullet_count`` (int): exactly ``value`` lines are bullets (``- ``, ``* `` or ``• ``);
- ``language`` (ISO 639-1 code, e.g. ``en``): the answer's language as py3langid classifies it.

Each constraint becomes one rubric criterion whose mark the harness sets (:func:`check`); the rest of
the rubric is marked by the judge.
"""

from __future__ import annotations

import json
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Kind = Literal["max_words", "min_words", "json", "include_keywords", "exclude_keywords", "bullet_count", "language"]
CHECKED_PREFIX = "[checked in code] "
_WORD = re.compile(r"\S*[A-Za-z0-9À-ɏЀ-ӿ]\S*")
_BULLET = re.compile(r"^\s*(?:[-*•])\s+\S", re.MULTILINE)
_FENCE = re.compile(r"^\s*```[a-zA-Z]*\s*\n(.*?)\n```\s*$", re.DOTALL)


class Constraint(BaseModel):
    """One checkable constraint (see the module docstring for the kinds and their values)."""

    model_config = ConfigDict(extra="ignore")

    kind: Kind
    value: int | str | list[str] | None = Field(
        None, description="max_words/min_words/bullet_count: an integer; *_keywords: a list of words; "
        "language: an ISO 639-1 code; json: null."
    )  # fmt: skip

    @model_validator(mode="after")
    def _value_fits_kind(self) -> Constraint:
        v = self.value
        if self.kind in ("max_words", "min_words", "bullet_count"):
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise ValueError(f"{self.kind} needs a non-negative integer value")
        elif self.kind in ("include_keywords", "exclude_keywords"):
            if isinstance(v, str):
                self.value = [v]
            elif not (isinstance(v, list) and v and all(isinstance(w, str) and w.strip() for w in v)):
                raise ValueError(f"{self.kind} needs a non-empty list of words")
        elif self.kind == "language":
            if not (isinstance(v, str) and re.fullmatch(r"[a-z]{2}", v)):
                raise ValueError("language needs an ISO 639-1 code such as 'en'")
        return self


def describe(c: Constraint) -> str:
    """The requirement in words, as solvers and the rubric read it."""
    v = c.value
    if c.kind == "max_words":
        return f"the answer has at most {v} words"
    if c.kind == "min_words":
        return f"the answer has at least {v} words"
    if c.kind == "json":
        return "the whole answer is valid JSON"
    if c.kind == "include_keywords":
        return "the answer uses each of these words: " + ", ".join(v)  # type: ignore[arg-type]
    if c.kind == "exclude_keywords":
        return "the answer uses none of these words: " + ", ".join(v)  # type: ignore[arg-type]
    if c.kind == "bullet_count":
        return f"the answer has exactly {v} bullet points (lines starting with '- ')"
    return f"the answer is written in the language with ISO 639-1 code '{v}'"


def words(text: str) -> int:
    return len(_WORD.findall(text))


def _has_word(text: str, word: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(word.strip())}(?!\w)", text, re.IGNORECASE) is not None


def check(c: Constraint, answer: str) -> bool:
    """Whether ``answer`` meets ``c``; pure and deterministic."""
    v = c.value
    if c.kind == "max_words":
        return words(answer) <= int(v)  # type: ignore[arg-type]
    if c.kind == "min_words":
        return words(answer) >= int(v)  # type: ignore[arg-type]
    if c.kind == "json":
        m = _FENCE.match(answer)
        try:
            json.loads(m.group(1) if m else answer)
        except ValueError:
            return False
        return True
    if c.kind == "include_keywords":
        return all(_has_word(answer, w) for w in v)  # type: ignore[union-attr]
    if c.kind == "exclude_keywords":
        return not any(_has_word(answer, w) for w in v)  # type: ignore[union-attr]
    if c.kind == "bullet_count":
        return len(_BULLET.findall(answer)) == int(v)  # type: ignore[arg-type]
    import py3langid

    return bool(answer.strip()) and py3langid.classify(answer)[0] == v
