"""Reading a run directory written by ``autodata run`` or ``autodata baseline`` (the shared layout)."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from autodata.errors import UserError
from autodata.example import Example
from autodata.store.files import atomic_text


@dataclass(slots=True)
class RunData:
    path: Path
    method: str  # the baseline's name, or "agentic" for the inner loop
    examples: list[Example]
    summary: dict[str, Any]
    episodes: list[dict[str, Any]] = field(default_factory=list)
    config: dict[str, Any] | None = None  # the run's stored config (credentials already masked)

    @property
    def label(self) -> str:
        return f"{self.method} ({self.path.name})"


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except ValueError as exc:
                    raise UserError(f"{path}:{n}: not JSON ({exc})") from None
    return rows


def read_examples(path: Path) -> list[Example]:
    """The examples of an ``examples.jsonl`` written by a run (any stored version, migrated on read:
    ``Example.load``). Raises UserError naming the line that is not JSON or not an example."""
    out = []
    for n, row in enumerate(read_jsonl(path), 1):
        try:
            out.append(Example.load(row))
        except (ValidationError, ValueError) as exc:
            first = str(exc).splitlines()
            raise UserError(f"{path}: example {n} is not an autodata example ({' '.join(first[:3])})") from None
    return out


def stored_config(run_dir: Path) -> dict[str, Any] | None:
    db = run_dir / "run.db"
    if not db.exists():
        return None
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        row = con.execute("SELECT value FROM meta WHERE key = 'config'").fetchone()
    except sqlite3.DatabaseError:
        return None
    finally:
        con.close()
    return json.loads(row[0]) if row else None


def load_run(run_dir: Path, *, examples_file: str = "examples.jsonl") -> RunData:
    examples_path = run_dir / examples_file
    summary_path = run_dir / "summary.json"
    if not examples_path.exists() or not summary_path.exists():
        raise UserError(f"{run_dir} is not a finished run directory (needs {examples_file} and summary.json)")
    try:
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise UserError(f"{summary_path}: not JSON ({exc})") from None
    episodes_path = run_dir / "episodes.jsonl"
    return RunData(
        path=run_dir,
        method=summary.get("method") or "agentic",
        examples=read_examples(examples_path),
        summary=summary,
        episodes=read_jsonl(episodes_path) if episodes_path.exists() else [],
        config=stored_config(run_dir),
    )


def write_json(path: Path, value: Any) -> None:
    atomic_text(path, json.dumps(value, indent=2, ensure_ascii=False) + "\n")


def task_text(example: Example, on: str = "task") -> str:
    """The text compared between examples: the question, or the whole task a solver sees."""
    if on == "question":
        return example.question
    return f"{example.context}\n{example.question}"
