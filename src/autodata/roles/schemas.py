"""Typed outputs of the roles: what each model must return, validated before anything uses it."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from autodata.judging.schemas import RubricItem

QualityIssue = Literal["leakage", "too_easy", "recall_only", "rubric_unsound", "not_grounded", "unclear", "other"]


class _Out(BaseModel):
    model_config = ConfigDict(extra="ignore")  # models add fields now and then; we keep what we asked for


class ChallengerOutput(_Out):
    question_type: str = Field(min_length=1)
    reasoning_skills: list[str]
    context: str = Field(min_length=1, description="The problem setup a solver sees; never the answer.")
    question: str = Field(min_length=1)
    reference_answer: str = Field(min_length=1)
    rubric: list[RubricItem] = Field(min_length=1)


class QualityVerdict(_Out):
    verdict: Literal["pass", "fail"]
    issues: list[QualityIssue] = Field(default_factory=list)
    feedback: str = ""


class ShortAnswerOutput(_Out):
    """The ``verifiable`` profile's challenger output: one exact answer instead of a rubric."""

    question_type: str = Field(min_length=1)
    reasoning_skills: list[str]
    context: str = Field(min_length=1, description="The problem setup a solver sees; never the answer.")
    question: str = Field(min_length=1)
    reference_answer: str = Field(
        min_length=1, max_length=200, description="Only the final answer: a number, fraction or expression."
    )
    solution: str = Field("", description="How the reference answer follows from the context (not shown to solvers).")


AgentTool = Literal["call_challenger", "call_quality_verifier", "evaluate_weak", "evaluate_strong", "finish", "give_up"]


class OrchestratorAction(_Out):
    """One step of the agent orchestrator: a tool to call, with a note on why."""

    thought: str = Field("", description="One or two sentences: what you concluded and why this tool now.")
    tool: AgentTool
    instructions: str = Field(
        "", description="For call_challenger: what the new example should do differently. Empty otherwise."
    )


class Analysis(_Out):
    """The outer loop's analyzer: why the recipe's episodes failed, in causes an edit can address."""

    root_causes: list[str] = Field(min_length=1)
    summary: str = ""


class RecipeEdit(_Out):
    component: str = Field(min_length=1, description="An editable component or knob name.")
    new_value: str = Field(description="The component's complete new text, or the knob's new integer value.")


class RecipeEdits(_Out):
    """The outer loop's implementer: edits to the editable components only."""

    rationale: str = ""
    edits: list[RecipeEdit] = Field(min_length=1)
