"""Output files written whole or not at all: a reader (or a crash) never sees half a file."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any


def _tmp(path: Path) -> Path:
    return path.with_suffix(path.suffix + ".tmp")


def atomic_text(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path``, then rename it over ``path``."""
    tmp = _tmp(path)
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def atomic_jsonl(path: Path, rows: Iterable[Any]) -> int:
    """One JSON object per line (UTF-8 kept as is), streamed, then renamed over ``path``; the row count."""
    tmp = _tmp(path)
    n = 0
    with tmp.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
            n += 1
    os.replace(tmp, path)
    return n
