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
)
_CLOSERS = re.compile(rf"</\s*({'|'.join(LABELS)})\s*>", re.IGNORECASE)


def fence(text: str) -> str:
    """Neutralise closing tags inside untrusted text so it cannot end its own block early."""
    return _CLOSERS.sub(lambda m: m.group(0).replace("<", "‹").replace(">", "›"), text)
