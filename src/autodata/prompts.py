"""Prompt templates: Jinja2 files shipped in ``autodata/prompts``; Python code only fills them in."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("autodata", "prompts"),
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=False,
    autoescape=False,  # prompts are plain text for models, not HTML
)


@lru_cache(maxsize=128)
def template(name: str) -> jinja2.Template:
    return _ENV.get_template(name)


def template_source(name: str) -> str:
    """A template's text as written (what recipe and frozen hashes are computed over)."""
    tpl = template(name)
    return Path(tpl.filename).read_text(encoding="utf-8") if tpl.filename else name


def render(template_name: str, /, **values: Any) -> str:
    """Render a template file (e.g. ``structured_repair.j2``); a missing variable is an error, not ''."""
    return template(template_name).render(**values).strip()
