"""A document and the record of one that was skipped."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any


def normalise(text: str) -> str:
    """Whitespace folded: the form ids are computed from, so re-wrapping a file keeps its id."""
    return " ".join(text.split())


def document_id(text: str) -> str:
    """Stable id from content alone (not path or time): the same text is the same document."""
    return "doc-" + hashlib.sha256(normalise(text).encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class Document:
    id: str
    source: str  # path, or hf://name#row
    title: str
    text: str
    format: str  # txt, md, rst, pdf, html, jsonl, parquet, hf
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def chars(self) -> int:
        return len(self.text)


@dataclass(frozen=True, slots=True)
class Skipped:
    """A document that was not used, and why, in words a user can act on."""

    source: str
    reason: str  # machine-readable: empty, too_short, binary, undecodable, oversized, duplicate, ...
    detail: str

    def to_dict(self) -> dict[str, str]:
        return {"source": self.source, "reason": self.reason, "detail": self.detail}


class SkipDocument(Exception):
    """Raised by a reader: this input is not a usable document (never stops a run)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
