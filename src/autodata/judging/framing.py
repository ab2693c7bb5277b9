"""How untrusted text is put in front of a model: delimited, labelled as data, unable to break out."""

from __future__ import annotations

import re

# every label the prompts fence data with: untrusted text may close none of them early
LABELS = (
    "document",
    "context",
    "question",
    "answer",
    "reference_answer",
    "rubric",
    "feedback",
    "directives",
    "scores",
    "example",
    "component",
    "analysis",
    "rejections",
    "rubric_rules",
    "earlier_rounds",
)
_CLOSERS = re.compile(rf"</\s*({'|'.join(LABELS)})\s*>", re.IGNORECASE)


def fence(text: str) -> str:
    """Neutralise closing tags inside untrusted text so it cannot end its own block early."""
    return _CLOSERS.sub(lambda m: m.group(0).replace("<", "‹").replace(">", "›"), text)


def one_line(text: str) -> str:
    """Text as one line (runs of whitespace, newlines included, become one space): a rubric criterion
    shown as an ``[index] criterion`` line cannot start a line of its own that looks like another."""
    return " ".join(text.split())
