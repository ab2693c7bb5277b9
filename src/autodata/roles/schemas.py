"""Typed outputs of the roles: what each model must return, validated before anything uses it."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from autodata.judging.code import CODE_CRITERION
from autodata.judging.constraints import CHECKED_PREFIX, Constraint, describe
from autodata.judging.schemas import RubricItem
from autodata.sandbox.tasks import entry_point

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


class ExampleSource:
    """A challenger output that builds the loop's example itself (:meth:`to_example`); ``example_type``:
    the class of that example (what the loop carries, stores and re-solves, e.g. the optimizer's canary)."""

    example_type: ClassVar[type[ChallengerOutput]]

    def to_example(self) -> ChallengerOutput:
        raise NotImplementedError


class CodeTaskOutput(_Out, ExampleSource):
    """The ``code`` profile's challenger output: a programming task with a reference and hidden tests."""

    question_type: str = Field(min_length=1)
    reasoning_skills: list[str]
    statement: str = Field(min_length=1, description="The task a solver sees; never the solution.")
    signature: str = Field(min_length=1, description="The function's signature line, e.g. 'def f(x: int) -> int:'.")
    reference_solution: str = Field(min_length=1, description="A complete Python module defining the function.")
    tests: str = Field(min_length=1, description="A Python test module: test_* functions with plain asserts.")

    def to_example(self) -> CodeExample:
        """The task as the loop carries it: the solver sees the statement and the signature only."""
        ep = entry_point(self.reference_solution, self.signature)
        name = ep[0] if ep else ""
        return CodeExample(
            question_type=self.question_type,
            reasoning_skills=self.reasoning_skills,
            context=f"{self.statement.strip()}\n\nSignature:\n{self.signature.strip()}",
            question=f"Implement `{name or 'the function'}` in Python as specified.",
            reference_answer=self.reference_solution,
            rubric=[RubricItem(criterion=CODE_CRITERION, weight=1, category="unit tests")],
            tests=self.tests,
            signature=self.signature.strip(),
            entry_point=name,
        )


class CodeExample(ChallengerOutput):
    """A code task as the loop carries it: the solver sees ``context`` (statement and signature) and
    ``question``; ``reference_answer`` is the reference solution; ``tests`` stay hidden (the scorer
    runs them); the one-criterion ``rubric`` is the harness's own (passing the tests)."""

    tests: str = Field(min_length=1)
    signature: str = ""
    entry_point: str = ""
    language: str = "python"


class InstructionOutput(_Out, ExampleSource):
    """The ``instruction`` profile's challenger output: an instruction with checkable constraints (checked
    in code) and a rubric for the rest (marked by the judge)."""

    question_type: str = Field(min_length=1)
    reasoning_skills: list[str]
    context: str = Field(min_length=1, description="The material the instruction is about (shown to solvers).")
    instruction: str = Field(min_length=1, description="What to write; the constraints are added to it.")
    constraints: list[Constraint] = Field(min_length=1, description="Requirements a program can check.")
    reference_answer: str = Field(min_length=1, description="An answer that meets every constraint.")
    rubric: list[RubricItem] = Field(min_length=1, description="Criteria for what code cannot check.")

    def to_example(self) -> InstructionExample:
        """The solver sees the instruction followed by its requirements; the rubric is one criterion per
        constraint (marked in code) followed by the challenger's criteria (marked by the judge)."""
        lines = "\n".join(f"- {describe(c)}" for c in self.constraints)
        checked = [
            RubricItem(criterion=CHECKED_PREFIX + describe(c), weight=1, category="checked in code")
            for c in self.constraints
        ]
        return InstructionExample(
            question_type=self.question_type,
            reasoning_skills=self.reasoning_skills,
            context=self.context,
            question=f"{self.instruction.strip()}\n\nRequirements:\n{lines}",
            reference_answer=self.reference_answer,
            rubric=checked + list(self.rubric),
            constraints=list(self.constraints),
        )


class InstructionExample(ChallengerOutput):
    """An instruction task as the loop carries it: ``rubric[:len(constraints)]`` are checked in code."""

    constraints: list[Constraint] = Field(min_length=1)


CodeTaskOutput.example_type = CodeExample
InstructionOutput.example_type = InstructionExample


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
