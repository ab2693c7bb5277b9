"""The simulator's roles, in one explicit table: which request is whose, and what each reads.

A structured request is routed by the ``title`` of the JSON schema it asks for, compared with the
titles of the schema *classes* imported below (a renamed class breaks this import or changes both
sides at once: never a silent fallback to filler). A request without a schema whose user message
holds both a ``<context>`` and a ``<question>`` block is a solver's; which solver behaviour answers
depends on the question itself (a problem stated in the simulator's machine-readable form, a
programming task naming a function of the code bank in backticks, requirement lines in the form the
instruction profile writes them, a look-up question of the simulated one-shot writers, or any other
question). Anything else gets the generic
behaviour of :mod:`autodata.sim.ladder`.

Each :class:`Role` names the contract inputs it reads (:mod:`autodata.sim.contracts`); a request
that names a role's schema but lacks a block the role requires is refused (HTTP 400) with the
block's name.

The free-text solver's contract, which has no schema to key on: **the request has no response
schema, and its user message holds a** ``<context>`` **block and a** ``<question>`` **block** (in either
order). The labels are the contract; the sentences around them are not read.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from pydantic import BaseModel

from autodata.baselines.schemas import (
    CotSelfInstructOutput,
    CotSelfInstructShortOutput,
    GroundedOutput,
    GroundedShortOutput,
    SelfInstructOutput,
    SelfInstructShortOutput,
)
from autodata.judging.schemas import JudgeMarks, LoopVerdict
from autodata.roles.schemas import (
    Analysis,
    ChallengerOutput,
    CodeTaskOutput,
    InstructionOutput,
    OrchestratorAction,
    QualityVerdict,
    RecipeEdits,
    ShortAnswerOutput,
)
from autodata.sim import agent, baselines, code, exact, instruction, meta, roles
from autodata.sim.base import SimOutput, SimRequest
from autodata.sim.contracts import (
    ContractError,
    block,
    blocks,
    json_block,
    json_messages,
    required,
    rubric_lines,
    schema_title,
)

Messages = list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Role:
    """One simulated role: the schema it answers (None: free text), its contract reader, its behaviour."""

    name: str
    schema: type[BaseModel] | None
    read: Callable[[Messages], dict[str, Any]]
    answer: Callable[[SimRequest], SimOutput]

    @property
    def title(self) -> str | None:
        return title_of(self.schema) if self.schema is not None else None


def title_of(cls: type[BaseModel]) -> str:
    """The JSON-schema title a class's schema carries (pydantic: the class name unless configured)."""
    return str(cls.model_json_schema().get("title", cls.__name__))


# ---------------------------------------------------------------------------- contract readers


FEEDBACK_FIELDS = ("round", "stage", "codes", "weak_mean", "strong_mean", "gap", "issues")


def _challenger(m: Messages) -> dict[str, Any]:
    entries = json_block(m, "feedback", "challenger", default=[])
    if not isinstance(entries, list):
        raise ContractError("simulated challenger: the <feedback> block is not a JSON list")
    return {
        "document": required(m, "document", "challenger"),
        # the entries' machine-readable fields only: their ``messages`` are words for a model to read
        "feedback": [{k: e[k] for k in FEEDBACK_FIELDS if k in e} for e in entries if isinstance(e, dict)],
        "directives": json_block(m, "directives", "challenger", default=[]),
        "rubric_rules": _rubric_rules(m),
    }


RUBRIC_RULE_FIELDS = ("min_positive", "max_positive", "min_negative", "max_negative", "max_weight")


def _rubric_rules(m: Messages) -> dict[str, int]:
    """The optional ``<rubric_rules>`` JSON object (counts and weight cap); absent: no rules given."""
    rules = json_block(m, "rubric_rules", "challenger", default={})
    if not isinstance(rules, dict):
        raise ContractError("simulated challenger: the <rubric_rules> block is not a JSON object")
    return {k: int(rules[k]) for k in RUBRIC_RULE_FIELDS if isinstance(rules.get(k), int)}


def _verifier(m: Messages) -> dict[str, Any]:
    return {
        "context": required(m, "context", "quality verifier"),
        "directives": json_block(m, "directives", "quality verifier", default=[]),
    }


def _judge(m: Messages) -> dict[str, Any]:
    return {
        "question": required(m, "question", "judge"),
        "rubric": rubric_lines(required(m, "rubric", "judge")),
        "answer": required(m, "answer", "judge"),
    }


def _loop_judge(m: Messages) -> dict[str, Any]:
    scores = json_block(m, "scores", "loop judge")
    if scores is None:
        raise ContractError("simulated loop judge: the request has no <scores> block, which its contract reads")
    return {"scores": scores}


def _orchestrator(m: Messages) -> dict[str, Any]:
    return {"results": json_messages(m)}


def _analyzer(m: Messages) -> dict[str, Any]:
    return {"rejections": json_block(m, "rejections", "analyzer", default={})}


def _implementer(m: Messages) -> dict[str, Any]:
    components = {b.attrs.get("name", ""): "" if b.body == "(empty)" else b.body for b in blocks(m, "component")}
    return {"components": components, "analysis": json_block(m, "analysis", "implementer", default={})}


def _writer(m: Messages) -> dict[str, Any]:
    return {
        "document": block(m, "document") or "",
        "examples": [b.body for b in blocks(m, "example")],
        "rubric_rules": _rubric_rules(m),
    }


def _solver(m: Messages) -> dict[str, Any]:
    return {"context": block(m, "context"), "question": block(m, "question")}


def solve(req: SimRequest) -> SimOutput:
    """The free-text solver: which behaviour depends on the question, not on the prompt around it."""
    question = req.inputs["question"]
    if exact.states_problem(question):
        return exact.solver(req)
    if code.task_of(question) is not None:
        return code.solver(req)
    if instruction.requirements(question) is not None:
        return instruction.solver(req)
    if baselines.is_lookup(question):
        return baselines.lookup_solver(req)
    return roles.solver(req)


# ---------------------------------------------------------------------------- the table

ROLES: tuple[Role, ...] = (
    Role("challenger", ChallengerOutput, _challenger, roles.challenger),
    Role("short-answer challenger", ShortAnswerOutput, _challenger, exact.challenger),
    Role("code challenger", CodeTaskOutput, _challenger, code.challenger),
    Role("instruction challenger", InstructionOutput, _challenger, instruction.challenger),
    Role("quality verifier", QualityVerdict, _verifier, roles.verifier),
    Role("judge", JudgeMarks, _judge, roles.judge),
    Role("loop judge", LoopVerdict, _loop_judge, agent.loop_judge),
    Role("orchestrator", OrchestratorAction, _orchestrator, agent.orchestrator),
    Role("analyzer", Analysis, _analyzer, meta.analyzer),
    Role("implementer", RecipeEdits, _implementer, meta.implementer),
    *(
        Role(f"baseline writer {cls.__name__}", cls, _writer, partial(baselines.generator, name=cls.__name__))
        for cls in (SelfInstructOutput, GroundedOutput, CotSelfInstructOutput)
    ),
    *(
        Role(f"baseline writer {cls.__name__}", cls, _writer, partial(baselines.short_generator, name=cls.__name__))
        for cls in (SelfInstructShortOutput, GroundedShortOutput, CotSelfInstructShortOutput)
    ),
)
SOLVER = Role("solver", None, _solver, solve)
BY_TITLE: dict[str, Role] = {r.title: r for r in ROLES if r.title is not None}
if len(BY_TITLE) != len(ROLES):  # two roles keyed on one title would make routing depend on order
    raise RuntimeError("two simulated roles answer the same response schema")


def identify(schema: dict[str, Any] | None, messages: Messages) -> tuple[Role, dict[str, Any]] | None:
    """The role a request is for and its contract inputs; None for the generic behaviour.

    Raises :class:`ContractError` when the schema names a role but a block it requires is missing.
    """
    if schema is not None:
        role = BY_TITLE.get(schema_title(schema) or "")
        return (role, role.read(messages)) if role is not None else None
    inputs = _solver(messages)
    if inputs["context"] is None or inputs["question"] is None:
        return None
    return SOLVER, inputs
