"""The judging package's own prompt templates (``judging/templates/*.j2``): solver, judge, loop judge.

They live inside the package (not in ``autodata/prompts``) so that the frozen hash, which covers
every file of this package, covers them, and so that nothing outside the package can edit them.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"

_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=False,
    autoescape=False,  # prompts are plain text for models, not HTML
)


@lru_cache(maxsize=32)
def template(name: str) -> jinja2.Template:
    """A template of this package by file name (``solver.j2``); ``jinja2.TemplateNotFound`` if absent."""
    return _ENV.get_template(name)


def render(template_name: str, /, **values: Any) -> str:
    """Render a judging template; a missing variable is an error (``jinja2.UndefinedError``), not ''."""
    return template(template_name).render(**values).strip()


def template_source(name: str) -> str:
    """A judging template's text as written (what the run's recipe hash is computed over)."""
    return (TEMPLATE_DIR / name).read_text(encoding="utf-8")
