"""The numbers a report shows, computed once from the run store.

Every figure reads from :class:`RunData`, never from the store, so each figure is a pure function
of these numbers and a test can check them against the run's own files.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autodata.review.index import mean_score
from autodata.run_info import RunInfo
from autodata.store.reviews import ReviewState
from autodata.store.run_store import RunStore

WEAK_CODES = frozenset({"weak_mean_too_high", "weak_best_too_high", "weak_too_many_correct", "weak_zero_attempt"})


@dataclass(slots=True)
class RoundPoint:
    """One round that reached the strong solver: where it lands in the weak/strong plane."""

    weak: float
    strong: float
    accepted: bool


@dataclass(slots=True)
class RunData:
    run_dir: Path
    info: RunInfo
    summary: dict[str, Any]
    funnel: list[tuple[str, int]]
    rejections: Counter[str]
    rounds_per_accepted: list[int]
    max_rounds: int
    points: list[RoundPoint]
    gaps_accepted: list[float]
    gaps_rejected: list[float]
    question_words: list[int]
    rubric_sizes: list[int]
    usage_by_role: dict[str, dict[str, float]]  # made: calls behind the documents, cached answers at their price
    tokens_per_document: dict[str, list[int]] = field(default_factory=dict)  # status -> tokens of each episode
    reviewed: dict[str, int] = field(default_factory=dict)

    @property
    def accepted(self) -> int:
        return int(self.summary["documents"]["accepted"])


def _quality_passed(r: dict[str, Any]) -> bool:
    return bool((r.get("quality") or {}).get("passed"))


def _weak_passed(r: dict[str, Any]) -> bool:
    codes = {x["code"] for x in (r.get("decision") or {}).get("reasons", [])}
    return _quality_passed(r) and r.get("strong") is not None and not WEAK_CODES & codes


def document_funnel(episodes: list[dict[str, Any]]) -> list[tuple[str, int]]:
    """A true funnel, in documents: each step counts the documents with at least one round that got
    that far, so every bar is a subset of the one before (rounds are counted in the rejection chart)."""
    steps = [
        ("with a question that passed the quality check", _quality_passed),
        ("with a question that passed the weak solver", _weak_passed),
        ("accepted (an example)", lambda r: bool((r.get("decision") or {}).get("accepted"))),
    ]
    counts = [(label, sum(1 for ep in episodes if any(ok(r) for r in ep.get("rounds", [])))) for label, ok in steps]
    return [("documents tried", len(episodes)), *counts]


def load_run(run_dir: Path) -> RunData:
    from autodata.loop.run import summarize  # the same summary `autodata status` prints

    store = RunStore.open_existing(run_dir)
    try:
        info = RunInfo.load(store)
        summary = summarize(store)
        episodes = list(store.episodes())
        examples = list(store.examples())
        states: dict[str, ReviewState] = store.reviews().states()
        usage = store.usage_by_document()
    finally:
        store.close()

    rounds = [r for ep in episodes for r in ep.get("rounds", [])]
    ids = {e.id for e in examples}
    status = Counter(s.status for k, s in states.items() if k in ids)
    funnel = document_funnel(episodes)
    if status["approved"] or status["rejected"]:
        funnel.append(("approved by a reviewer", status["approved"]))

    points, gaps_rejected = [], []
    for r in rounds:
        weak, strong = mean_score(r.get("weak")), mean_score(r.get("strong"))
        if weak is None or strong is None:
            continue
        ok = bool((r.get("decision") or {}).get("accepted"))
        points.append(RoundPoint(weak, strong, ok))
        if not ok:
            gaps_rejected.append(strong - weak)

    tokens: dict[str, list[int]] = {}
    for ep in episodes:
        roles = usage.get(ep["document_id"])
        if roles:
            total = sum(int(u.get("input_tokens", 0)) + int(u.get("output_tokens", 0)) for u in roles.values())
            tokens.setdefault(ep["status"], []).append(total)

    loop_cfg = info.config.get("loop") or {}
    return RunData(
        run_dir=Path(run_dir),
        info=info,
        summary=summary,
        funnel=funnel,
        rejections=Counter(summary["rejections"]),
        rounds_per_accepted=[e.rounds for e in examples],
        max_rounds=int(loop_cfg.get("max_rounds") or max([e.rounds for e in examples] or [1])),
        points=points,
        gaps_accepted=[e.gap for e in examples if e.gap is not None],
        gaps_rejected=gaps_rejected,
        question_words=[len(e.question.split()) for e in examples],
        rubric_sizes=[len(e.rubric) for e in examples],
        # what the documents cost to make, cached answers included (a run replayed from the cache shows them)
        usage_by_role=(summary.get("made") or {}).get("by_role") or summary["usage_by_role"],
        tokens_per_document=tokens,
        reviewed={
            "approved": status["approved"],
            "rejected": status["rejected"],
            "edited": sum(1 for k, s in states.items() if k in ids and s.edited),
            "unreviewed": len(ids) - status["approved"] - status["rejected"],
        },
    )
