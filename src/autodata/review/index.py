"""The list a reviewer filters and walks: one row per round that produced an example.

Accepted examples are what a reviewer decides on; rejected rounds are listed too, read-only, so a
reviewer can see what the loop threw away and why. The index is built from the run store and
topped up on every request with the documents finished since the last look, so a run that is
still going can be reviewed as it grows without re-reading everything.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from autodata.example import Example
from autodata.store.reviews import ReviewState
from autodata.store.run_store import RunStore

PAGE_SIZE = 50
SORTS = {
    "doc": "document order",
    "gap": "gap, largest first",
    "weak": "weak mean, lowest first",
    "strong": "strong mean, highest first",
    "rounds": "rounds, most first",
    "recent": "finished most recently",
}


@dataclass(slots=True)
class Item:
    doc_id: str
    seq: int
    round: int
    rounds: int
    title: str
    accepted: bool
    example_id: str | None
    profile: str
    question: str
    question_type: str
    weak_mean: float | None
    strong_mean: float | None
    gap: float | None
    rubric_size: int
    reasons: list[str]
    finished: float
    haystack: str = field(repr=False)  # lower-cased text searched by the filter

    @property
    def key(self) -> str:
        return f"{self.doc_id}/{self.round}"


def mean_score(attempts: list[dict[str, Any]] | None) -> float | None:
    scores = [a["score"] for a in attempts or [] if a.get("score") is not None]
    return sum(scores) / len(scores) if scores else None


def items_of(doc: dict[str, Any]) -> list[Item]:
    """The rows of one finished document: every round whose challenger produced an example."""
    episode = doc["episode"]
    example: Example | None = doc.get("example")
    rounds = episode.get("rounds") or []
    out = []
    for rnd in rounds:
        ex = rnd.get("example")
        if not ex:
            continue
        decision = rnd.get("decision") or {}
        accepted = bool(decision.get("accepted"))
        weak, strong = mean_score(rnd.get("weak")), mean_score(rnd.get("strong"))
        out.append(
            Item(
                doc_id=doc["id"],
                seq=doc["seq"],
                round=int(rnd.get("round", 0)),
                rounds=len(rounds),
                title=doc["title"],
                accepted=accepted,
                example_id=example.id if accepted and example is not None else None,
                profile=str((example.profile if example is not None else None) or episode.get("profile") or ""),
                question=str(ex.get("question", "")),
                question_type=str(ex.get("question_type", "")),
                weak_mean=weak,
                strong_mean=strong,
                gap=strong - weak if weak is not None and strong is not None else None,
                rubric_size=len(ex.get("rubric") or []),
                reasons=[r["code"] for r in decision.get("reasons", [])] + (["error"] if rnd.get("error") else []),
                finished=doc["finished"],
                haystack=" ".join(
                    str(x) for x in (doc["title"], ex.get("context"), ex.get("question"), ex.get("reference_answer"))
                ).lower(),
            )
        )
    return out


class Filters(BaseModel):
    """The list's query string; every field is optional and unknown keys are ignored."""

    model_config = ConfigDict(extra="ignore")

    kind: Literal["accepted", "rejected", "all"] = "accepted"
    status: Literal["any", "unreviewed", "approved", "rejected", "edited"] = "any"
    profile: str = ""
    q: str = Field("", max_length=200)
    weak_min: float | None = None
    weak_max: float | None = None
    strong_min: float | None = None
    strong_max: float | None = None
    gap_min: float | None = None
    gap_max: float | None = None
    sort: Literal["doc", "gap", "weak", "strong", "rounds", "recent"] = "doc"
    page: int = Field(1, ge=1)

    def query(self, **changes: Any) -> dict[str, str]:
        """The non-default fields as query parameters (for links that keep the filter)."""
        data = self.model_copy(update=changes).model_dump()
        defaults = Filters().model_dump()
        return {k: str(v) for k, v in data.items() if v != defaults[k] and v is not None}


def _within(value: float | None, low: float | None, high: float | None) -> bool:
    if low is None and high is None:
        return True
    if value is None:
        return False
    return (low is None or value >= low - 1e-9) and (high is None or value <= high + 1e-9)


def _sort_key(sort: str) -> Any:
    missing = float("inf")
    keys = {
        "doc": lambda i: (i.seq, i.round),
        "gap": lambda i: (-(i.gap if i.gap is not None else -missing), i.seq, i.round),
        "weak": lambda i: (i.weak_mean if i.weak_mean is not None else missing, i.seq, i.round),
        "strong": lambda i: (-(i.strong_mean if i.strong_mean is not None else -missing), i.seq, i.round),
        "rounds": lambda i: (-i.rounds, i.seq, i.round),
        "recent": lambda i: (-i.finished, i.seq, i.round),
    }
    return keys[sort]


class RunIndex:
    """Rows of a run, refreshed incrementally from the store (safe to call from several threads)."""

    def __init__(self, store: RunStore) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._by_doc: dict[str, list[Item]] = {}
        self._since = 0.0

    def refresh(self) -> None:
        with self._lock:
            for doc in self.store.documents_since(self._since):
                self._by_doc[doc["id"]] = items_of(doc)  # a re-finished document replaces its rows
                self._since = max(self._since, doc["finished"])

    @property
    def documents(self) -> int:
        return len(self._by_doc)

    def items(self) -> list[Item]:
        with self._lock:
            return [item for rows in self._by_doc.values() for item in rows]

    def find(self, doc_id: str, round_no: int) -> Item | None:
        with self._lock:
            return next((i for i in self._by_doc.get(doc_id, []) if i.round == round_no), None)

    def select(self, f: Filters, states: dict[str, ReviewState]) -> list[Item]:
        needle = f.q.strip().lower()
        out = []
        for item in self.items():
            if f.kind != "all" and item.accepted != (f.kind == "accepted"):
                continue
            if f.status != "any":
                if not item.accepted:
                    continue
                state = states.get(item.example_id or "")
                if f.status == "edited":
                    if not (state and state.edited):
                        continue
                elif (state.status if state else "unreviewed") != f.status:
                    continue
            if f.profile and item.profile != f.profile:
                continue
            if not (
                _within(item.weak_mean, f.weak_min, f.weak_max)
                and _within(item.strong_mean, f.strong_min, f.strong_max)
                and _within(item.gap, f.gap_min, f.gap_max)
            ):
                continue
            if needle and needle not in item.haystack:
                continue
            out.append(item)
        out.sort(key=_sort_key(f.sort))
        return out

    def counts(self, states: dict[str, ReviewState]) -> dict[str, int]:
        items = self.items()
        accepted = [i for i in items if i.accepted]
        status = [states[i.example_id].status if i.example_id in states else "unreviewed" for i in accepted]
        return {
            "documents": self.documents,
            "accepted": len(accepted),
            "rejected_rounds": len(items) - len(accepted),
            "approved": status.count("approved"),
            "rejected": status.count("rejected"),
            "unreviewed": status.count("unreviewed"),
            "edited": sum(1 for i in accepted if i.example_id in states and states[i.example_id].edited),
        }

    def profiles(self) -> list[str]:
        return sorted({i.profile for i in self.items() if i.profile})
