"""Reviewers' decisions on a run's examples: table ``reviews`` in ``run.db``, an append-only log.

Every approve, reject, reopen, edit and note is one row with its reviewer and time, written the
moment it is made (SQLite WAL, so a run still writing examples and a reviewer deciding on them do
not block each other). Nothing is ever updated in place: an example's current state is the fold of
its rows, the original example in ``examples`` is never touched, and the log is the audit trail.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from autodata.errors import UserError
from autodata.example import Example, Review, ReviewedExample

_SCHEMA = """
CREATE TABLE IF NOT EXISTS reviews (
    id INTEGER PRIMARY KEY AUTOINCREMENT, example_id TEXT NOT NULL, action TEXT NOT NULL,
    reason TEXT NOT NULL DEFAULT '', payload TEXT, reviewer TEXT NOT NULL, at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS reviews_by_example ON reviews (example_id, id);
"""

Action = Literal["approve", "reject", "reopen", "edit", "note"]
ACTIONS: tuple[str, ...] = ("approve", "reject", "reopen", "edit", "note")
Status = Literal["unreviewed", "approved", "rejected"]
EDITABLE = ("question", "reference_answer", "rubric")
MAX_TEXT = 20_000  # a reason, note or edited field longer than this is a paste accident


@dataclass(slots=True)
class ReviewEvent:
    id: int
    example_id: str
    action: str
    reason: str
    payload: Any
    reviewer: str
    at: float


@dataclass(slots=True)
class ReviewState:
    """Where one example stands: the last approve/reject/reopen decides the status; edits merge."""

    example_id: str
    status: Status = "unreviewed"
    reason: str = ""
    decided_by: str = ""
    decided_at: float | None = None
    edits: dict[str, Any] = field(default_factory=dict)
    edited_by: str = ""
    notes: list[ReviewEvent] = field(default_factory=list)
    history: list[ReviewEvent] = field(default_factory=list)

    def apply(self, event: ReviewEvent) -> None:
        self.history.append(event)
        if event.action in ("approve", "reject", "reopen"):
            self.status = {"approve": "approved", "reject": "rejected", "reopen": "unreviewed"}[event.action]  # type: ignore[assignment]
            self.reason = event.reason if event.action == "reject" else ""
            self.decided_by, self.decided_at = event.reviewer, event.at
        elif event.action == "edit":
            self.edits.update(event.payload or {})
            self.edited_by = event.reviewer
        elif event.action == "note":
            self.notes.append(event)

    @property
    def edited(self) -> bool:
        return bool(self.edits)


def check_rubric(rubric: Any) -> list[dict[str, Any]]:
    """An edited rubric must still be a rubric the harness can score: criteria with integer weights,
    at least one of them positive (the scoring formula divides by the positive weights)."""
    if not isinstance(rubric, list) or not rubric:
        raise UserError("the rubric needs at least one criterion")
    out = []
    for i, item in enumerate(rubric, 1):
        if not isinstance(item, dict):
            raise UserError(f"rubric item {i} is not a criterion")
        text = str(item.get("criterion", "")).strip()
        if not text:
            raise UserError(f"rubric item {i} has no criterion text")
        weight = item.get("weight")
        if isinstance(weight, bool) or not isinstance(weight, int):
            raise UserError(f"rubric item {i}: the weight must be a whole number, got {weight!r}")
        out.append({"criterion": text, "weight": weight, "category": str(item.get("category", "")).strip()})
    if not any(c["weight"] > 0 for c in out):
        raise UserError("the rubric needs at least one criterion with a positive weight")
    return out


def check_edits(edits: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(edits) - set(EDITABLE))
    if unknown:
        raise UserError(f"only {', '.join(EDITABLE)} can be edited, not {', '.join(unknown)}")
    out: dict[str, Any] = {}
    for key, value in edits.items():
        if key == "rubric":
            out[key] = check_rubric(value)
            continue
        text = str(value).strip()
        if not text:
            raise UserError(f"the {key.replace('_', ' ')} cannot be empty")
        if len(text) > MAX_TEXT:
            raise UserError(f"the {key.replace('_', ' ')} is longer than {MAX_TEXT} characters")
        out[key] = text
    if not out:
        raise UserError("nothing was changed")
    return out


class ReviewLog:
    """Reads and appends review events on an open ``run.db`` connection."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        db.executescript(_SCHEMA)

    def record(
        self, example_id: str, action: str, *, reviewer: str, reason: str = "", payload: Any = None
    ) -> ReviewEvent:
        """Validate and append one event; committed when this returns."""
        if action not in ACTIONS:
            raise UserError(f"unknown review action {action!r}; expected one of {', '.join(ACTIONS)}")
        reviewer = reviewer.strip()
        if not reviewer:
            raise UserError("a decision needs a reviewer name")
        reason = reason.strip()
        if action == "reject" and not reason:
            raise UserError("a rejection needs a reason")
        if action == "note":
            payload = str(payload or "").strip()
            if not payload:
                raise UserError("the note is empty")
        if action == "edit":
            payload = check_edits(payload or {})
        if len(reason) > MAX_TEXT or (isinstance(payload, str) and len(payload) > MAX_TEXT):
            raise UserError(f"longer than {MAX_TEXT} characters")
        at = time.time()
        cur = self._db.execute(
            "INSERT INTO reviews (example_id, action, reason, payload, reviewer, at) VALUES (?, ?, ?, ?, ?, ?)",
            (example_id, action, reason, None if payload is None else json.dumps(payload), reviewer[:200], at),
        )
        return ReviewEvent(int(cur.lastrowid or 0), example_id, action, reason, payload, reviewer[:200], at)

    def events(self, example_id: str | None = None) -> list[ReviewEvent]:
        sql = "SELECT id, example_id, action, reason, payload, reviewer, at FROM reviews"
        args: tuple[Any, ...] = ()
        if example_id is not None:
            sql, args = sql + " WHERE example_id = ?", (example_id,)
        rows = self._db.execute(sql + " ORDER BY id", args).fetchall()
        return [ReviewEvent(r[0], r[1], r[2], r[3], json.loads(r[4]) if r[4] else None, r[5], r[6]) for r in rows]

    def states(self) -> dict[str, ReviewState]:
        states: dict[str, ReviewState] = {}
        for event in self.events():
            states.setdefault(event.example_id, ReviewState(event.example_id)).apply(event)
        return states

    def state(self, example_id: str) -> ReviewState:
        state = ReviewState(example_id)
        for event in self.events(example_id):
            state.apply(event)
        return state


def reviewed_example(example: Example, state: ReviewState | None) -> ReviewedExample:
    """The example as the reviewer left it: edited fields replace the originals, which are kept
    under ``original``; ``review`` says where it stands."""
    data = example.stored()
    original: dict[str, Any] = {}
    if state is not None and state.edits:
        original = {k: data.get(k) for k in state.edits}
        data.update(state.edits)
    review = Review(
        status=state.status if state else "unreviewed",
        reason=state.reason if state else "",
        reviewer=state.decided_by if state else "",
        decided_at=state.decided_at if state else None,
        edited=bool(state and state.edits),
        notes=[str(n.payload) for n in state.notes] if state else [],
    )
    return ReviewedExample.model_validate({**data, "review": review, "original": original})
