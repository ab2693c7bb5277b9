"""What each baseline generator must return: the challenger's example fields, under its own schema name.

The ``…Short…`` forms are the verifiable profile's: a short exact answer checked in code, no rubric.
The names matter beyond validation: structured-output servers see them, and the simulated ladder tells
the generators apart by them. CoT Self-Instruct reasons before it writes, so its ``reasoning`` field is
put first in the schema (guided decoding emits fields in schema order).
"""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, Field

from autodata.roles.schemas import ChallengerOutput, ShortAnswerOutput


class SelfInstructOutput(ChallengerOutput):
    """Self-Instruct: a new task written from seed examples alone, without a document."""


class GroundedOutput(ChallengerOutput):
    """Grounded Self-Instruct: one task written in one pass from a document."""


def _reasoning_first(schema: dict[str, Any]) -> None:
    props = schema.get("properties", {})
    if "reasoning" in props:
        schema["properties"] = {"reasoning": props.pop("reasoning"), **props}
        schema["required"] = ["reasoning", *[r for r in schema.get("required", []) if r != "reasoning"]]


class CotSelfInstructOutput(ChallengerOutput):
    """CoT Self-Instruct: step-by-step reasoning about the document and the seeds, then the new task."""

    model_config = ConfigDict(json_schema_extra=_reasoning_first)

    reasoning: str = Field(min_length=1, description="Think first: what the document supports and how hard to aim.")


# The verifiable profile's forms: one short exact answer (and its derivation) instead of a rubric.


class SelfInstructShortOutput(ShortAnswerOutput):
    """Self-Instruct, verifiable profile."""


class GroundedShortOutput(ShortAnswerOutput):
    """Grounded Self-Instruct, verifiable profile."""


class CotSelfInstructShortOutput(ShortAnswerOutput):
    """CoT Self-Instruct, verifiable profile: reasoning first, then the problem and its exact answer."""

    model_config = ConfigDict(json_schema_extra=_reasoning_first)

    reasoning: str = Field(min_length=1, description="Think first: what the document supports and how hard to aim.")
