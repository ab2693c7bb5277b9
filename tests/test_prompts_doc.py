"""docs/prompts.md shows what each role's model receives; it is generated from the code that sends
the requests (scripts/render_prompts.py), and this test fails when the two disagree."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _script():
    spec = importlib.util.spec_from_file_location("render_prompts", ROOT / "scripts" / "render_prompts.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up while the script is executed
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.timeout(600)
def test_docs_prompts_md_is_what_the_code_sends(monkeypatch, tmp_path):
    monkeypatch.setenv("AUTODATA_CACHE_DIR", str(tmp_path / "cache"))
    page = _script().render_page()
    for role in ("challenger", "quality_verifier", "weak_solver", "strong_solver", "judge", "loop_judge"):
        assert f"### {role}\n" in page
    for role in ("orchestrator", "analyzer", "implementer"):
        assert f"### {role}\n" in page
    current = (ROOT / "docs" / "prompts.md").read_text(encoding="utf-8")
    assert current == page, "docs/prompts.md is out of date: run python scripts/render_prompts.py"
