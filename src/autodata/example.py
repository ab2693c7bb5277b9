"""One typed example, from the loop that makes it to every reader of a run.

An :class:`Example` is what the run store keeps for one accepted (or, for a baseline, one solved)
round: the challenger's example (context, question, reference answer, rubric, the code task's or
instruction profile's extra fields), the weak and strong solvers' scored attempts with their marks,
the judge's evidence and the solvers' reasoning, the quality verdict, the whole trajectory of the
episode (every round, rejected ones with their feedback), **the exact messages the solvers were
sent**, the recipe and frozen hashes and the models per role. The loop builds it
(``loop.document.example_record``), the run store writes and reads it (``store.run_store``), and the
review app, the exports, the analyses, the report and the rewards read its attributes, never string
keys of a dict.

Stored form: the JSON of :meth:`Example.stored` in ``run.db`` (table ``examples``) and in
``examples.jsonl``. Only the keys that were set are written, so a field that did not exist when a
row was written stays absent rather than becoming a null. :data:`VERSION` is written with every
row; :meth:`Example.load` reads every version this code knows (:func:`migrate`), so run directories
written before this module existed (version 1: no ``version`` key, no stored solver messages) still
load.

A reviewer's state (decision, edits, notes) and the data-set checks' flags are not part of the stored
example; :class:`ReviewedExample` is the example as a reviewer left it, with them.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

VERSION = 2
"""The stored example's format version. 1: rows written before the version key existed (no
``solver_messages``, ``frozen_hash``); 2: this module."""


class _Stored(BaseModel):
    # every stored key is kept, known or not: a row written by a later version (or a field added by a
    # caller) survives a read and a re-write unchanged
    model_config = ConfigDict(extra="allow")

    def stored(self) -> dict[str, Any]:
        """The JSON-ready dict of what was set (absent fields stay absent), extra keys included."""
        return self.model_dump(mode="json", exclude_unset=True)


class Message(_Stored):
    """One chat message as sent to a model (OpenAI chat format)."""

    role: str
    content: str


class Criterion(_Stored):
    """One rubric criterion as stored: text, integer weight (negative weights penalise), category."""

    criterion: str
    weight: int
    category: str | None = None


class Attempt(_Stored):
    """One solver attempt. In an example's sides only scored attempts are kept; the trajectory keeps
    attempt errors too (``error``). ``marks``: 0/1 per rubric criterion, in rubric order; ``evidence``:
    the judge's quote per criterion (None where a scorer checks in code); ``reasoning``: the solver's
    reasoning as its server returned it (stored for audit and training, never shown to a judge);
    ``extracted``: the final answer an exact-answer scorer compared; ``details``: what a rule-based
    scorer measured (the code profile's test run)."""

    answer: str | None = None
    marks: list[int] | None = None
    score: float | None = None
    evidence: list[str] | None = None
    reasoning: str | None = None
    extracted: str | None = None
    details: dict[str, Any] | None = None
    error: str | None = None


class Side(_Stored):
    """One solver's attempts on the example with their mean and best score (in [0, 1])."""

    attempts: list[Attempt] = Field(default_factory=list)
    mean: float | None = None
    max: float | None = None

    def scores(self) -> list[float]:
        return [a.score for a in self.attempts if a.score is not None]

    def best(self) -> Attempt | None:
        """The highest-scoring attempt with an answer (the first of equals), or None."""
        scored = [a for a in self.attempts if a.score is not None and a.answer]
        return max(scored, key=lambda a: a.score or 0.0) if scored else None


class Quality(_Stored):
    """The quality verifier's verdict on the example (``feedback`` its words)."""

    passed: bool = False
    feedback: str = ""


class TrajectoryRound(_Stored):
    """One round of the episode as ``loop.episode.Round.to_dict`` records it: the challenger's example
    (None when its output was unusable), the quality report, every attempt, the decision, the error
    and the feedback the challenger got; ``loop_judge``, ``consistency``, ``instructions`` when set."""

    round: int
    example: dict[str, Any] | None = None
    quality: dict[str, Any] | None = None
    weak: list[Attempt] = Field(default_factory=list)
    strong: list[Attempt] | None = None
    decision: dict[str, Any] | None = None
    error: str | None = None
    feedback: list[str] = Field(default_factory=list)


class Example(_Stored):
    """One example as the run store keeps it (see the module docstring).

    ``solver_messages``: the messages the weak and strong solvers were sent, exactly (None only for
    a version-1 row, whose prompt was not stored: :func:`migrate` rebuilds it and says so in
    ``solver_messages_source``). ``meets_acceptance``, ``method``, ``acceptance``, ``reasoning`` and
    ``solution`` are set by the baselines only (whether the loop would have accepted it, the writer,
    the decision, what the writer said beyond the example)."""

    version: int = VERSION
    id: str
    # the loop always sets these; an example file from elsewhere (``autodata dedup`` reads one) may not
    document_id: str = ""
    document_title: str | None = None
    profile: str = "rubric-qa"
    question_type: str | None = None
    reasoning_skills: list[str] | None = None
    context: str = ""
    question: str
    reference_answer: str = ""
    rubric: list[Criterion] = Field(default_factory=list)
    code: dict[str, Any] | None = None  # the code profile's task: tests, signature, entry_point, language
    constraints: list[dict[str, Any]] | None = None  # the instruction profile's constraints, checked in code
    weak: Side = Field(default_factory=Side)
    strong: Side = Field(default_factory=Side)
    gap: float | None = None
    rounds: int = 1
    trajectory: list[TrajectoryRound] = Field(default_factory=list)
    quality: Quality | None = None
    solver_messages: list[Message] | None = None
    solver_messages_source: Literal["sent", "rebuilt"] | None = None
    recipe_hash: str | None = None
    frozen_hash: str | None = None
    models: dict[str, str] = Field(default_factory=dict)
    created_at: str | None = None
    # baselines
    meets_acceptance: bool | None = None
    method: str | None = None
    acceptance: dict[str, Any] | None = None
    reasoning: str | None = None
    solution: str | None = None

    @classmethod
    def load(cls, data: dict[str, Any]) -> Example:
        """A stored row of any known version (``run.db`` or ``examples.jsonl``), migrated to this one.
        Raises ``pydantic.ValidationError`` for a row that is not an example."""
        return cls.model_validate(migrate(data))

    @property
    def passes(self) -> bool:
        """Whether it meets the acceptance predicate (the inner loop stores only examples that do)."""
        return self.meets_acceptance is not False

    def rubric_dicts(self) -> list[dict[str, Any]]:
        return [c.stored() for c in self.rubric]

    def record(self) -> dict[str, Any]:
        """The example as a plain dict (for code that takes one: the sealed scorers' ``ground_truth``)."""
        return self.stored()

    def prompt(self) -> list[dict[str, str]]:
        """The messages the solvers were sent, as dicts (what an ``rl`` row's prompt is)."""
        return [{"role": m.role, "content": m.content} for m in self.solver_messages or []]


def migrate(data: dict[str, Any]) -> dict[str, Any]:
    """A stored row brought to :data:`VERSION` (a new dict; ``data`` is not changed).

    1 -> 2: the row has no ``version`` and no ``solver_messages``. The solvers' prompt is rebuilt once
    here with the solver template of the row's profile (``judging.solver.solver_messages``, the same
    function the loop sends with), and ``solver_messages_source`` says ``rebuilt``: for a row of an
    older version that is the best that can be known, and it is said. Raises ValueError for a version
    newer than this code."""
    out = dict(data)
    version = int(out.get("version") or 1)
    if version > VERSION:
        raise ValueError(f"example {out.get('id')!r} has format version {version}; this autodata reads up to {VERSION}")
    if version == 1:
        if out.get("solver_messages") is None and out.get("context") is not None and out.get("question") is not None:
            from autodata.judging.solver import solver_messages
            from autodata.loop.profile import profile

            template = profile(out.get("profile") or "rubric-qa").solver_template
            out["solver_messages"] = solver_messages(out["context"], out["question"], template)
            out["solver_messages_source"] = "rebuilt"
        version = 2
    out["version"] = version
    return out


class Review(BaseModel):
    """Where an example stands with the reviewers (``store.reviews``): ``status`` unreviewed, approved,
    rejected; ``edited`` when a reviewer changed its text; ``notes`` in the order written."""

    status: str = "unreviewed"
    reason: str = ""
    reviewer: str = ""
    decided_at: float | None = None
    edited: bool = False
    notes: list[str] = Field(default_factory=list)


class ReviewedExample(Example):
    """An example as a reviewer left it: edited fields (question, reference answer, rubric, context)
    replace the originals, which are kept in ``original``; ``review`` says where it stands;
    ``flags``/``flag_reasons`` are the reasons an export would leave it out by default (set by
    ``export.rows.select``). Never stored: computed from the stored example and the review log."""

    review: Review = Field(default_factory=Review)
    original: dict[str, Any] = Field(default_factory=dict)
    flags: list[str] = Field(default_factory=list)
    flag_reasons: list[str] = Field(default_factory=list)

    def prompt(self) -> list[dict[str, str]]:
        """The solvers' messages with the reviewer's text in place of the text it replaced.

        No solver was asked an edited question; its prompt is the stored one with the fenced
        ``<context>`` / ``<question>`` blocks' text replaced (the template is not rendered again, so
        the instructions are exactly those the run's solvers got)."""
        messages = super().prompt()
        if not any(k in self.original for k in ("context", "question")):
            return messages
        from autodata.judging.framing import fence

        for key in ("context", "question"):
            if key not in self.original:
                continue
            old = f"<{key}>\n{fence(str(self.original[key]))}\n</{key}>"
            new = f"<{key}>\n{fence(str(getattr(self, key)))}\n</{key}>"
            for m in messages:
                if m["role"] == "user" and old in m["content"]:
                    m["content"] = m["content"].replace(old, new, 1)
                    break
            else:
                raise ValueError(f"example {self.id}: the stored solver prompt holds no <{key}> block to edit")
        return messages
