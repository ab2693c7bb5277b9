"""Cutting a long document to the challenger's context budget, by a rule a user can predict.

The rule (documented in docs/documents.md):

1. A document within the budget is used whole.
2. Otherwise it is split into sections at headings (Markdown ``#``, reStructuredText underlines,
   numbered headings such as ``3.2 Method``, and ALL-CAPS heading lines common in legal texts).
3. Sections are kept in this priority, each in full while it fits: the title and the text before
   the first heading (capped at a tenth of the budget); the abstract or summary; the introduction
   or background or motivation; method-like sections (method, approach, model, algorithm,
   framework, design, specification, rationale, analysis, discussion, holding, opinion); then the
   remaining sections in document order. References, bibliography, acknowledgements and
   appendices come last of all.
4. The first section that does not fit whole is cut at a paragraph boundary; later ones are left
   out. Kept sections are put back in document order, and every gap is marked with ``[…]`` so the
   reader (and the challenger) can see that text is missing.
5. A text without recognisable headings keeps its beginning (70 % of the budget) and its end
   (30 %), because opinions and rulings tend to state their holding at the end.

The budget is in estimated tokens (four characters a token), the same estimate the runtime uses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from autodata.documents.model import Document

GAP = "[…]"
CHARS_PER_TOKEN = 4

_PRIORITY = (
    ("abstract", re.compile(r"\b(abstract|summary|synopsis|syllabus)\b", re.I)),
    ("introduction", re.compile(r"\b(introduction|background|motivation|overview)\b", re.I)),
    (
        "method",
        re.compile(
            r"\b(method|methods|methodology|approach|model|algorithm|framework|design|specification|rationale|"
            r"proposed|analysis|discussion|holding|opinion|conclusion)\b",
            re.I,
        ),
    ),
)
_LAST = re.compile(r"\b(references|bibliography|acknowledg\w*|appendix|appendices|supplementary|footnotes)\b", re.I)

_MD_HEADING = re.compile(r"^#{1,6}\s+\S")
_NUMBERED = re.compile(r"^(\d+(\.\d+)*|[IVX]+)\.?\s+[A-Z][^\n]{0,80}$")
_CAPS = re.compile(r"^[A-Z][A-Z0-9 ,.&'()\-:]{3,80}$")
_UNDERLINE = re.compile(r"^([=\-~^*#])\1{2,}\s*$")


@dataclass(frozen=True, slots=True)
class Section:
    heading: str
    text: str  # including its heading line(s)
    index: int

    @property
    def kind(self) -> str:
        if _LAST.search(self.heading):
            return "last"
        for kind, pattern in _PRIORITY:
            if pattern.search(self.heading):
                return kind
        # the first section is the title block (``# Title`` plus authors), unless it is itself,
        # say, the abstract
        return "preamble" if self.index == 0 else "other"


def split_sections(text: str) -> list[Section]:
    lines = text.split("\n")
    starts: list[tuple[int, str]] = []
    for i, line in enumerate(lines):
        s = line.strip()
        if not s:
            continue
        prev_blank = i == 0 or not lines[i - 1].strip()
        if _MD_HEADING.match(s):
            starts.append((i, s.lstrip("#").strip()))
        elif (
            i + 1 < len(lines)
            and _UNDERLINE.match(lines[i + 1].strip())
            and len(lines[i + 1].strip()) >= len(s)
            and not _UNDERLINE.match(s)
        ) or (
            prev_blank
            and (_NUMBERED.match(s) or (_CAPS.match(s) and len(s.split()) <= 10))
            and (i + 1 >= len(lines) or not lines[i + 1].strip() or len(s) < 60)
        ):
            starts.append((i, s))
    if not starts:
        return [Section("", text, 0)]
    sections: list[Section] = []
    if starts[0][0] > 0:
        sections.append(Section("", "\n".join(lines[: starts[0][0]]), 0))
    for n, (line_no, heading) in enumerate(starts):
        end = starts[n + 1][0] if n + 1 < len(starts) else len(lines)
        sections.append(Section(heading, "\n".join(lines[line_no:end]), len(sections)))
    return sections


def _cut(text: str, max_chars: int) -> str:
    """Keep whole paragraphs (or, failing that, whole sentences/words) up to ``max_chars``."""
    if len(text) <= max_chars:
        return text
    head = text[:max_chars]
    for sep in ("\n\n", "\n", ". ", " "):
        at = head.rfind(sep)
        if at > max_chars * 0.5:
            return head[: at + (1 if sep == ". " else 0)].rstrip()
    return head.rstrip()


def fit_text(text: str, max_tokens: int) -> tuple[str, dict[str, object]]:
    """(text within budget, a record of what was kept and dropped)."""
    budget = max_tokens * CHARS_PER_TOKEN
    if len(text) <= budget:
        return text, {"cut": False}
    sections = split_sections(text)
    if len(sections) == 1:
        head = _cut(text, int(budget * 0.7))
        tail_start = len(text) - int(budget * 0.3)
        tail = text[tail_start:]
        nl = tail.find("\n")
        if 0 <= nl < len(tail) * 0.5:
            tail = tail[nl + 1 :]
        return f"{head}\n\n{GAP}\n\n{tail.lstrip()}", {
            "cut": True,
            "rule": "head_and_tail",
            "original_chars": len(text),
        }
    order = {"preamble": 0, "abstract": 1, "introduction": 2, "method": 3, "other": 4, "last": 5}
    ranked = sorted(sections, key=lambda s: (order[s.kind], s.index))
    kept: dict[int, str] = {}
    partial: str | None = None
    left = budget
    for s in ranked:
        room = left - len(GAP) - 4
        if room <= 0:
            break
        piece = s.text
        if s.kind == "preamble":
            piece = _cut(piece, min(room, max(200, budget // 10)))
        if len(piece) <= room:
            kept[s.index] = piece
            left -= len(piece) + 2
        else:
            kept[s.index] = _cut(piece, room)
            partial = s.heading or "(preamble)"
            left = 0
            break
    parts: list[str] = []
    previous = -1
    for idx in sorted(kept):
        if idx != previous + 1 or (previous >= 0 and kept.get(previous) != sections[previous].text):
            parts.append(GAP)
        parts.append(kept[idx].strip())
        previous = idx
    if previous != len(sections) - 1 or kept[previous] != sections[previous].text:
        parts.append(GAP)
    record = {
        "cut": True,
        "rule": "sections",
        "original_chars": len(text),
        "kept": [sections[i].heading or "(preamble)" for i in sorted(kept)],
        "partial": partial,
        "dropped": [s.heading for s in sections if s.index not in kept],
    }
    return "\n\n".join(parts), record


def fit_to_budget(doc: Document, max_tokens: int) -> Document:
    """The document cut to ``max_tokens`` (estimated); the cut is recorded in ``meta['cut']``."""
    text, record = fit_text(doc.text, max_tokens)
    if not record["cut"]:
        return doc
    return replace(doc, text=text, meta={**doc.meta, "cut": record})
