"""Text a reviewer reads: the passage an example is grounded in, and the judge's evidence marked.

Everything here returns escaped markup: model and document text is untrusted, so it is escaped
piece by piece and only our own ``<mark>`` tags are added around the pieces.
"""

from __future__ import annotations

import re

from markupsafe import Markup, escape

_WORD = re.compile(r"[^\W_]{4,}", re.UNICODE)
# words too common to tell passages apart
_STOP = frozenset(
    """that this with from were have been their which these those there than then they them also into such
    when where what while will would could should about after before between other only some more most very
    each both because under over answer question context""".split()  # noqa: SIM905
)


def content_words(text: str) -> set[str]:
    return {w for w in (m.group(0).lower() for m in _WORD.finditer(text)) if w not in _STOP}


def best_passage(document: str, probe: str, width: int = 1600) -> tuple[int, int]:
    """Start and end of the stretch of ``document`` (about ``width`` characters, cut at paragraph or
    sentence ends) that shares the most content words with ``probe`` (the example's context, question
    and reference answer). Ties go to the earlier stretch."""
    if len(document) <= width:
        return 0, len(document)
    wanted = content_words(probe)
    # candidate starts: paragraph and sentence starts, so excerpts begin where a reader would
    starts = sorted({0, *(m.end() for m in re.finditer(r"\n\s*\n|(?<=[.!?])\s+", document))})
    best, best_score = (0, width), -1
    for start in starts:
        if start >= len(document):
            break
        end = min(len(document), start + width)
        if end < len(document):
            cut = max(document.rfind("\n", start + width // 2, end), document.rfind(". ", start + width // 2, end))
            end = cut + 1 if cut > 0 else end
        score = len(wanted & content_words(document[start:end]))
        if score > best_score:
            best, best_score = (start, end), score
    return best


def highlight(text: str, quotes: list[str]) -> Markup:
    """``text`` escaped, with every stretch that one of ``quotes`` names wrapped in ``<mark>``
    (case-insensitive, first occurrence of each quote; overlapping stretches merged)."""
    spans: list[tuple[int, int]] = []
    lowered = text.lower()
    for quote in quotes:
        q = (quote or "").strip().lower()
        if len(q) < 2:
            continue
        at = lowered.find(q)
        if at >= 0:
            spans.append((at, at + len(q)))
    spans.sort()
    merged: list[list[int]] = []
    for a, b in spans:
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    out = Markup()
    pos = 0
    for a, b in merged:
        out += escape(text[pos:a]) + Markup("<mark>") + escape(text[a:b]) + Markup("</mark>")
        pos = b
    return out + escape(text[pos:])
