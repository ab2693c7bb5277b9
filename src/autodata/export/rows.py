"""Which examples leave a run, and the row layout of each export format.

Selection: once anyone has approved or rejected anything, a run's reviewed state is what counts,
so by default only approved examples are exported; a run nobody reviewed exports every accepted
example. Edited examples are exported with the reviewer's text (the original rides along).

Layouts:

- ``examples`` (jsonl, parquet, hf): one row per example with everything the run knows about it.
- ``rl``: the prompt the solvers saw, as chat messages, with the rubric and reference answer for a
  rubric-based reward; the column names TRL's GRPO trainer (``prompt``; every other column is
  passed to reward functions) and verl (``data_source``, ``prompt``, ``ability``, ``reward_model``,
  ``extra_info``) read.
- ``sft``: chat ``messages``: that prompt and the strong solver's best answer, or the reference
  answer when a reviewer edited the question (no solver ever answered the edited one).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any, Literal

import pyarrow as pa

from autodata.errors import UserError
from autodata.store.reviews import reviewed_example
from autodata.store.run_store import RunStore

Include = Literal["auto", "approved", "accepted", "unrejected"]
INCLUDE_CHOICES = ("auto", "approved", "accepted", "unrejected")

RUBRIC = pa.list_(pa.struct([("criterion", pa.string()), ("weight", pa.int64()), ("category", pa.string())]))
ATTEMPTS = pa.list_(
    pa.struct(
        [
            ("answer", pa.string()),
            ("score", pa.float64()),
            ("marks", pa.list_(pa.int64())),
            ("evidence", pa.list_(pa.string())),
        ]
    )
)
MESSAGES = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))


@dataclass(slots=True)
class Selection:
    examples: list[dict[str, Any]]  # reviewed_example() of each chosen example, in run order
    include: str  # the rule applied (auto resolved)
    accepted: int
    review_counts: dict[str, int]


def select(store: RunStore, include: str = "auto") -> Selection:
    if include not in INCLUDE_CHOICES:
        raise UserError(f"--include must be one of {', '.join(INCLUDE_CHOICES)}, not {include!r}")
    log = store.reviews()
    states = log.states()
    if include == "auto":
        # "approved" once any example stands approved or rejected (a decision later reopened does not count)
        include = "approved" if any(s.status != "unreviewed" for s in states.values()) else "accepted"
    examples = [reviewed_example(e, states.get(e["id"])) for e in store.examples()]
    keep = {
        "accepted": lambda s: True,
        "approved": lambda s: s == "approved",
        "unrejected": lambda s: s != "rejected",
    }[include]
    counts = Counter(e["review"]["status"] for e in examples)
    counts["edited"] = sum(1 for e in examples if e["review"]["edited"])
    chosen = [e for e in examples if keep(e["review"]["status"])]
    return Selection(chosen, include, len(examples), dict(counts))


def _rubric(items: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
    if items is None:
        return None
    return [
        {"criterion": str(c["criterion"]), "weight": int(c["weight"]), "category": str(c.get("category") or "")}
        for c in items
    ]


def _attempts(side: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "answer": a.get("answer"),
            "score": a.get("score"),
            "marks": a.get("marks"),
            "evidence": a.get("evidence"),
        }
        for a in side.get("attempts", [])
    ]


def example_row(e: dict[str, Any]) -> dict[str, Any]:
    original = e.get("original") or {}
    review = e["review"]
    return {
        "id": e["id"],
        "document_id": e["document_id"],
        "document_title": e.get("document_title"),
        "profile": e.get("profile"),
        "question_type": e.get("question_type"),
        "reasoning_skills": list(e.get("reasoning_skills") or []),
        "context": e["context"],
        "question": e["question"],
        "reference_answer": e["reference_answer"],
        "rubric": _rubric(e["rubric"]),
        "weak_attempts": _attempts(e["weak"]),
        "strong_attempts": _attempts(e["strong"]),
        "weak_mean": e["weak"].get("mean"),
        "weak_max": e["weak"].get("max"),
        "strong_mean": e["strong"].get("mean"),
        "strong_max": e["strong"].get("max"),
        "gap": e.get("gap"),
        "rounds": e.get("rounds"),
        "quality_passed": bool((e.get("quality") or {}).get("passed")),
        "recipe_hash": e.get("recipe_hash"),
        "models": dict(e.get("models") or {}),
        "review_status": review["status"],
        "review_reason": review["reason"],
        "reviewer": review["reviewer"],
        "edited": review["edited"],
        "original_question": original.get("question"),
        "original_reference_answer": original.get("reference_answer"),
        "original_rubric": _rubric(original.get("rubric")),
        "notes": list(review["notes"]),
        "created_at": e.get("created_at"),
    }


def examples_schema(rows: list[dict[str, Any]]) -> pa.Schema:
    roles = sorted({role for r in rows for role in r["models"]})
    return pa.schema(
        [
            ("id", pa.string()),
            ("document_id", pa.string()),
            ("document_title", pa.string()),
            ("profile", pa.string()),
            ("question_type", pa.string()),
            ("reasoning_skills", pa.list_(pa.string())),
            ("context", pa.string()),
            ("question", pa.string()),
            ("reference_answer", pa.string()),
            ("rubric", RUBRIC),
            ("weak_attempts", ATTEMPTS),
            ("strong_attempts", ATTEMPTS),
            ("weak_mean", pa.float64()),
            ("weak_max", pa.float64()),
            ("strong_mean", pa.float64()),
            ("strong_max", pa.float64()),
            ("gap", pa.float64()),
            ("rounds", pa.int64()),
            ("quality_passed", pa.bool_()),
            ("recipe_hash", pa.string()),
            ("models", pa.struct([(r, pa.string()) for r in roles]) if roles else pa.struct([("none", pa.string())])),
            ("review_status", pa.string()),
            ("review_reason", pa.string()),
            ("reviewer", pa.string()),
            ("edited", pa.bool_()),
            ("original_question", pa.string()),
            ("original_reference_answer", pa.string()),
            ("original_rubric", RUBRIC),
            ("notes", pa.list_(pa.string())),
            ("created_at", pa.string()),
        ]
    )


def prompt_messages(e: dict[str, Any]) -> list[dict[str, str]]:
    """Exactly what the solvers were asked (the frozen solver prompt of the example's profile)."""
    from autodata.judging.solver import solver_messages
    from autodata.loop.profile import profile

    return solver_messages(e["context"], e["question"], profile(e.get("profile") or "rubric-qa").solver_template)


def rl_row(e: dict[str, Any], index: int) -> dict[str, Any]:
    rubric = _rubric(e["rubric"])
    return {
        "data_source": f"autodata/{e.get('profile') or 'rubric-qa'}",
        "prompt": prompt_messages(e),
        "ability": e.get("question_type") or e.get("profile") or "",
        "reward_model": {"style": "rubric", "ground_truth": e["reference_answer"]},
        "extra_info": {"index": index, "split": "train", "id": e["id"], "question": e["question"], "rubric": rubric},
        "id": e["id"],
        "reference_answer": e["reference_answer"],
        "rubric": rubric,
    }


RL_SCHEMA = pa.schema(
    [
        ("data_source", pa.string()),
        ("prompt", MESSAGES),
        ("ability", pa.string()),
        ("reward_model", pa.struct([("style", pa.string()), ("ground_truth", pa.string())])),
        (
            "extra_info",
            pa.struct(
                [
                    ("index", pa.int64()),
                    ("split", pa.string()),
                    ("id", pa.string()),
                    ("question", pa.string()),
                    ("rubric", RUBRIC),
                ]
            ),
        ),
        ("id", pa.string()),
        ("reference_answer", pa.string()),
        ("rubric", RUBRIC),
    ]
)


def best_strong(e: dict[str, Any]) -> dict[str, Any] | None:
    """The strong solver's highest-scoring attempt (the first of equals)."""
    scored = [a for a in e["strong"].get("attempts", []) if a.get("score") is not None and a.get("answer")]
    return max(scored, key=lambda a: a["score"]) if scored else None


def sft_row(e: dict[str, Any]) -> dict[str, Any] | None:
    question_edited = "question" in (e.get("original") or {})
    best = None if question_edited else best_strong(e)
    if best is None and not question_edited:
        return None  # no judged strong answer: nothing to imitate
    answer, source, score = (
        (best["answer"], "strong_solver", best["score"]) if best else (e["reference_answer"], "reference_answer", None)
    )
    return {
        "messages": [*prompt_messages(e), {"role": "assistant", "content": answer}],
        "id": e["id"],
        "answer_source": source,
        "score": score,
    }


SFT_SCHEMA = pa.schema(
    [("messages", MESSAGES), ("id", pa.string()), ("answer_source", pa.string()), ("score", pa.float64())]
)
