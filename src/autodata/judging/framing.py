"""How untrusted text is put in front of a model: delimited, labelled as data, unable to break out."""

from __future__ import annotations

import re

_CLOSERS = re.compile(r"</\s*(document|answer|context)\s*>", re.IGNORECASE)


def fence(text: str) -> str:
    """Neutralise closing tags inside untrusted text so it cannot end its own block early."""
    return _CLOSERS.sub(lambda m: m.group(0).replace("<", "‹").replace(">", "›"), text)
