"""One document's work, as any executor runs it: budget cut, episode, trajectory and example.

:func:`process_document` is what the local executor (``loop.executor``) and the Ray workers
(``executors.ray_pool``) call; the run driver (``loop.run``) only schedules documents and writes
results. Kept apart from the driver so the executors import this module, not the driver that
imports them.
"""

from __future__ import annotations

import hashlib
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from autodata.config import Config
from autodata.documents import Document, fit_to_budget
from autodata.errors import UserError
from autodata.example import VERSION, Attempt, Example, Quality, Side
from autodata.judging import solver
from autodata.llm.runtime import ModelRuntime
from autodata.llm.types import CallError
from autodata.llm.usage import current_document
from autodata.loop.episode import Episode, EpisodeSettings, Round, scores_of
from autodata.loop.orchestrate import run_episode

CODE_FIELDS = ("tests", "signature", "entry_point", "language")  # a code task's fields kept in its example


def _side(attempts: list[Any]) -> Side:
    scored = scores_of(attempts)
    return Side(
        attempts=[
            Attempt(
                answer=a.answer,
                marks=a.marks,
                score=a.score,
                evidence=a.evidence,
                **({"reasoning": a.reasoning} if a.reasoning else {}),  # absent, not null, when there is none
            )
            for a in attempts
            if a.marks is not None
        ],
        mean=sum(scored) / len(scored) if scored else None,
        max=max(scored) if scored else None,
    )


def example_record(doc: Document, episode: Episode, rnd: Round, job: DocumentJob) -> Example:
    """The example of one evaluated round (models per role from the run's settings), with the messages
    its solvers were sent (``judging.solver.solver_messages`` of the profile's solver template: the
    very function and inputs ``Steps`` sent them with)."""
    cfg = job.cfg
    ex = rnd.example or {}
    assert rnd.decision is not None and rnd.strong is not None
    quality = rnd.quality or {}
    optional: dict[str, Any] = {}
    if "tests" in ex:
        optional["code"] = {k: ex[k] for k in CODE_FIELDS if k in ex}
    if ex.get("constraints"):  # the instruction profile's constraints, checked in code
        optional["constraints"] = ex["constraints"]
    if job.frozen_hash is not None:
        optional["frozen_hash"] = job.frozen_hash
    return Example(
        version=VERSION,
        id="ex-" + hashlib.sha256(f"{doc.id}|{ex.get('question', '')}".encode()).hexdigest()[:16],
        document_id=doc.id,
        document_title=doc.title,
        profile=cfg.loop.profile,
        question_type=ex.get("question_type"),
        reasoning_skills=ex.get("reasoning_skills"),
        context=ex.get("context"),
        question=ex.get("question"),
        reference_answer=ex.get("reference_answer"),
        rubric=ex.get("rubric"),
        **optional,
        weak=_side(rnd.weak),
        strong=_side(rnd.strong),
        gap=rnd.decision.gap,
        rounds=len(episode.rounds),
        # the whole trajectory: every round (rejected ones with their feedback), every attempt's answer,
        # reasoning, marks and evidence, as in episodes.jsonl
        trajectory=[r.to_dict() for r in episode.rounds],
        quality=Quality(passed=bool(quality.get("passed")), feedback=quality.get("feedback", "")),
        solver_messages=solver.solver_messages(
            ex.get("context") or "", ex.get("question") or "", job.settings.profile.solver_template
        ),
        solver_messages_source="sent",
        recipe_hash=job.recipe_hash,
        models={role: cfg.models[name].model for role, name in job.settings.endpoints.roles().items()},
        created_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    )


def accepted_example(doc: Document, episode: Episode, job: DocumentJob) -> Example | None:
    """The inner loop keeps the accepted round's example, if any."""
    rnd = episode.accepted_round
    return example_record(doc, episode, rnd, job) if rnd else None


# What a finished episode contributes to examples.jsonl (the baselines keep every evaluated example).
RecordFn = Callable[[Document, Episode, "DocumentJob"], "Example | None"]


@dataclass(slots=True)
class DocumentJob:
    """Everything a worker needs to turn one document into a result (picklable, for Ray)."""

    cfg: Config
    settings: EpisodeSettings
    record: RecordFn
    recipe_hash: str
    frozen_hash: str | None = None  # of the judging side (``autodata.frozen.frozen_hash``); ``run`` always sets it


@dataclass(slots=True)
class DocumentResult:
    """One document's outcome, as the store writer needs it; ``failure`` set when it did not finish."""

    doc_id: str
    status: str | None = None
    trajectory: dict[str, Any] | None = None
    example: Example | None = None
    rounds: int = 0
    calls: list[dict[str, Any]] = field(default_factory=list)
    failure: dict[str, str] | None = None

    @classmethod
    def failed(cls, doc: Document, error: str, **extra: str) -> DocumentResult:
        """A document that did not finish (``kind``, ``traceback`` in ``extra``): retried by a later run."""
        return cls(doc.id, failure={"document_id": doc.id, "source": doc.source, "error": error, **extra})

    text: str | None = None  # the document as the challenger saw it (kept for reviewers)


# A context-length error re-fits the document to this share of its budget, at most this many times.
REFIT_FACTOR = 0.7
MAX_REFITS = 3
MIN_REFIT_TOKENS = 200  # documents.max_tokens's own floor


async def episode_within(
    rt: ModelRuntime, doc: Document, budget: int, settings: EpisodeSettings
) -> tuple[Document, Episode, list[dict[str, Any]]]:
    """The episode on ``doc`` cut to ``budget`` tokens; on a context-length error (a server refusing a
    prompt longer than its window: vLLM's "This model's maximum context length is ...", SGLang's
    "... is longer than the model's context length ...") the document is cut to ``REFIT_FACTOR`` of
    that budget and the episode run again, at most ``MAX_REFITS`` times. Returns the document as the
    episode saw it, the episode and the re-fits (``{"max_tokens", "error", "next_max_tokens"}`` each,
    for the trajectory). The last error propagates (the document fails for this session, or the
    optimizer's evaluation fails). The challenger is never told: a server's limit is not a fault of its
    example. Both ``autodata run`` (:func:`fitted_episode`) and ``autodata optimize``'s evaluations use it."""
    refits: list[dict[str, Any]] = []
    while True:
        fitted = fit_to_budget(doc, budget)
        try:
            return fitted, await run_episode(rt, fitted, settings), refits
        except CallError as err:
            smaller = int(budget * REFIT_FACTOR)
            if err.kind != "context_too_long" or len(refits) >= MAX_REFITS or smaller < MIN_REFIT_TOKENS:
                if refits:
                    err.message = f"{err.message} (after re-fitting the document to {budget} tokens)"
                raise
            refits.append({"max_tokens": budget, "error": str(err)[:500], "next_max_tokens": smaller})
            budget = smaller


async def fitted_episode(
    rt: ModelRuntime, doc: Document, job: DocumentJob
) -> tuple[Document, Episode, list[dict[str, Any]]]:
    """:func:`episode_within` the run's ``documents.max_tokens`` budget, with the run's settings."""
    return await episode_within(rt, doc, job.cfg.documents.budget(), job.settings)


async def process_document(rt: ModelRuntime, doc: Document, job: DocumentJob) -> DocumentResult:
    """Cut the document to budget, run its episode, build its trajectory and example.

    A model-side failure (endpoint down, bad key, a context too long even after re-fitting, no valid
    evidence for a round) comes back as ``failure`` so the document is not stored as finished and a
    later run retries it; a bug of ours is recorded the same way instead of sinking the run. Only
    user errors propagate.
    """
    current_document.set(doc.id)  # this task's context: every call below is logged under it
    try:
        fitted, episode, refits = await fitted_episode(rt, doc, job)
        example = job.record(doc, episode, job)  # first: it may annotate the rounds
        trajectory: dict[str, Any] = {
            "document_id": doc.id,
            "source": doc.source,
            "title": doc.title,
            "status": episode.status,
            "orchestrator": episode.orchestrator,
            "cut": fitted.meta.get("cut"),
            "rounds": [r.to_dict() for r in episode.rounds],
        }
        if refits:
            trajectory["refits"] = refits
        if doc.meta.get("cleaned"):
            trajectory["cleaned"] = doc.meta["cleaned"]
        if episode.steps is not None:
            trajectory["steps"] = episode.steps
        if episode.note:
            trajectory["note"] = episode.note
        return DocumentResult(doc.id, episode.status, trajectory, example, len(episode.rounds), text=fitted.text)
    except CallError as err:
        return DocumentResult.failed(doc, str(err), kind=err.kind)
    except UserError:
        raise
    except Exception as exc:  # a bug of ours must not sink the run: record it, go on
        trace = "".join(traceback.format_exception(exc))[-3000:]
        return DocumentResult.failed(doc, f"internal error: {type(exc).__name__}: {exc}", traceback=trace)
