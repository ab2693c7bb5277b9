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
4a. Headings stay with their sections: a kept subsection brings the heading lines of the sections
   it sits in (``## BioCypher`` above ``### Methodology``), without their bodies, so nine kept
   "Methodology" blocks still say which tool each describes. Heading levels come from the style:
   the number of ``#``, the order in which reStructuredText underline characters first appear,
   the depth of a number (``3.2`` is level 2); ALL-CAPS lines are level 1.
4b. What was left out is listed at the end as an outline (``[Left out: 3 Results › 3.1 Ablation;
   References]``), within the budget, so the challenger knows the document's shape.
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
    """One section: its heading (empty for text before the first heading), its text including the
    heading line(s), its position, and its heading level (0 for the preamble, 1 for top level)."""

    heading: str
    text: str  # including its heading line(s)
    index: int
    level: int = 1

    @property
    def heading_lines(self) -> str:
        """The heading as it stands in the text (an underlined heading keeps its underline)."""
        lines = self.text.split("\n")
        if len(lines) > 1 and _UNDERLINE.match(lines[1].strip()):
            return "\n".join(lines[:2])
        return lines[0]

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
    """The text's sections at its headings (Markdown, reStructuredText underlines, numbered and
    ALL-CAPS heading lines), each with its level; one section with no heading when none is found."""
    lines = text.split("\n")
    starts: list[tuple[int, str, int]] = []
    rst_order: list[str] = []
    for i, line in enumerate(lines):
        s = line.strip()
        if not s:
            continue
        prev_blank = i == 0 or not lines[i - 1].strip()
        if _MD_HEADING.match(s):
            starts.append((i, s.lstrip("#").strip(), len(s) - len(s.lstrip("#"))))
        elif (
            i + 1 < len(lines)
            and _UNDERLINE.match(lines[i + 1].strip())
            and len(lines[i + 1].strip()) >= len(s)
            and not _UNDERLINE.match(s)
        ):
            char = lines[i + 1].strip()[0]
            if char not in rst_order:
                rst_order.append(char)
            starts.append((i, s, rst_order.index(char) + 1))
        elif (
            prev_blank
            and (_NUMBERED.match(s) or (_CAPS.match(s) and len(s.split()) <= 10))
            and (i + 1 >= len(lines) or not lines[i + 1].strip() or len(s) < 60)
        ):
            number = _NUMBERED.match(s)
            level = len(number.group(1).split(".")) if number and number.group(1)[0].isdigit() else 1
            starts.append((i, s, level))
    if not starts:
        return [Section("", text, 0, 0)]
    sections: list[Section] = []
    if starts[0][0] > 0:
        sections.append(Section("", "\n".join(lines[: starts[0][0]]), 0, 0))
    for n, (line_no, heading, level) in enumerate(starts):
        end = starts[n + 1][0] if n + 1 < len(starts) else len(lines)
        sections.append(Section(heading, "\n".join(lines[line_no:end]), len(sections), level))
    return sections


def ancestors(sections: list[Section]) -> dict[int, list[int]]:
    """For each section, the indices of the sections it sits in, outermost first.

    A section's parent is the nearest earlier section of a lower level (the preamble, level 0, is
    nobody's parent: it is the title block, kept on its own rule)."""
    out: dict[int, list[int]] = {}
    stack: list[Section] = []
    for sec in sections:
        if sec.level == 0:
            out[sec.index] = []
            continue
        while stack and stack[-1].level >= sec.level:
            stack.pop()
        out[sec.index] = [s.index for s in stack]
        stack.append(sec)
    return out


def _outline(sections: list[Section], dropped: list[int], parents: dict[int, list[int]], room: int) -> str:
    """``[Left out: A › B; C]`` for the dropped sections, shortened to ``room`` characters."""
    if not dropped or room < 40:
        return ""
    names = [
        " › ".join([*(sections[a].heading for a in parents[i] if sections[a].kind != "preamble"), sections[i].heading])
        for i in dropped
    ]
    names = [n for n in names if n]
    if not names:
        return ""
    for shown in range(len(names), 0, -1):
        rest = len(names) - shown
        text = "[Left out: " + "; ".join(names[:shown]) + (f"; and {rest} more" if rest else "") + "]"
        if len(text) <= room:
            return text
    return ""


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
    parents = ancestors(sections)
    reserve = min(800, budget // 10)  # for the outline of what is left out
    kept: dict[int, str] = {}
    partial: str | None = None
    left = budget - reserve
    for s in ranked:
        if s.index in kept and kept[s.index] != sections[s.index].heading_lines:
            continue
        # the heading lines of the sections it sits in come with it
        heads = [a for a in parents[s.index] if a not in kept]
        head_cost = sum(len(sections[a].heading_lines) + len(GAP) + 4 for a in heads)
        room = left - len(GAP) - 4 - head_cost
        if room <= 0:
            break
        piece = s.text
        if s.kind == "preamble":
            piece = _cut(piece, min(room, max(200, budget // 10)))
        for a in heads:
            kept[a] = sections[a].heading_lines
        left -= head_cost
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
    heading_only = [i for i in sorted(kept) if kept[i] == sections[i].heading_lines != sections[i].text]
    dropped = [s.index for s in sections if s.index not in kept]
    body = "\n\n".join(parts)
    outline = _outline(sections, dropped, parents, budget - len(body) - 2)
    record = {
        "cut": True,
        "rule": "sections",
        "original_chars": len(text),
        "kept": [sections[i].heading or "(preamble)" for i in sorted(kept) if i not in heading_only],
        "headings_only": [sections[i].heading for i in heading_only],
        "partial": partial,
        "dropped": [sections[i].heading for i in dropped],
        "outline": outline,
    }
    return (f"{body}\n\n{outline}" if outline else body), record


def fit_to_budget(doc: Document, max_tokens: int) -> Document:
    """The document cut to ``max_tokens`` (estimated); the cut is recorded in ``meta['cut']``."""
    text, record = fit_text(doc.text, max_tokens)
    if not record["cut"]:
        return doc
    return replace(doc, text=text, meta={**doc.meta, "cut": record})
