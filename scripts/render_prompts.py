"""Regenerate ``docs/prompts.md``: what each role's model receives, as the code sends it.

Every example config runs one document on the simulated ladder with a transport that records each
request body before the simulated model answers it; the first request of each role is written out
(messages, response schema, sampling fields). Nothing is re-rendered by hand, so the page cannot
drift from the code: ``tests/test_prompts_doc.py`` regenerates it and compares.

Usage: ``python scripts/render_prompts.py [--out docs/prompts.md] [--check]`` (from the repo root).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autodata.config import Config, load_config
from autodata.documents import Skipped, config_documents, fit_to_budget
from autodata.llm.runtime import ModelRuntime, make_backends
from autodata.loop.orchestrate import run_episode
from autodata.loop.run import settings_from

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ("quickstart", "verifiable", "legal", "agent", "code", "instruction", "optimize")
# Long data blocks (documents, contexts) are shown with their middle left out, the count said.
MAX_CHARS = 5000
KEEP_HEAD, KEEP_TAIL = 2500, 1000
SAMPLING = ("temperature", "top_p", "max_tokens", "max_completion_tokens", "seed", "n", "stop")


@dataclass
class Recorder:
    """A transport that keeps every request body it is handed, then lets the real one answer."""

    inner: Any
    endpoint: str
    seen: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    @property
    def label(self) -> str:
        return self.inner.label

    async def send(self, body: dict[str, Any]) -> Any:
        self.seen.append((self.endpoint, json.loads(json.dumps(body))))
        return await self.inner.send(body)

    async def aclose(self) -> None:
        await self.inner.aclose()


def recording_runtime(cfg: Config, seen: list[tuple[str, dict[str, Any]]]) -> ModelRuntime:
    backends = {
        name: [Recorder(b, name, seen) for b in make_backends(name, ep, cfg.seed)] for name, ep in cfg.models.items()
    }
    return ModelRuntime(cfg, backends=backends, cache=None)  # type: ignore[arg-type]


def schema_name(body: dict[str, Any]) -> str | None:
    rf = body.get("response_format") or {}
    if rf.get("type") == "json_schema":
        return (rf.get("json_schema") or {}).get("name")
    return "JSON object" if rf.get("type") == "json_object" else None


# The role a response schema belongs to, for endpoints that serve several roles.
SCHEMA_ROLE = {
    "ChallengerOutput": "challenger",
    "ShortAnswerOutput": "challenger",
    "QualityVerdict": "quality_verifier",
    "JudgeMarks": "judge",
    "LoopVerdict": "loop_judge",
    "OrchestratorAction": "orchestrator",
    "Analysis": "analyzer",
    "RecipeEdits": "implementer",
}


def role_of(cfg: Config, endpoint: str, schema: str | None) -> str:
    """The config's role served by ``endpoint``, told apart by the response schema asked for."""
    roles = sorted(r for r, ep in cfg.roles.items() if ep == endpoint)
    if len(roles) == 1:
        return roles[0]
    if schema in SCHEMA_ROLE and SCHEMA_ROLE[schema] in roles:
        return SCHEMA_ROLE[schema]
    return f"{' / '.join(roles) or endpoint} ({schema or 'free text'})"


def elide(text: str) -> str:
    if len(text) <= MAX_CHARS:
        return text
    cut = len(text) - KEEP_HEAD - KEEP_TAIL
    return f"{text[:KEEP_HEAD]}\n[… {cut:,} characters left out of this page …]\n{text[-KEEP_TAIL:]}"


async def _run_one(cfg: Config, seen: list[tuple[str, dict[str, Any]]]) -> None:
    doc = next(d for d in config_documents(cfg.documents) if not isinstance(d, Skipped))
    rt = recording_runtime(cfg, seen)
    try:
        await run_episode(rt, fit_to_budget(doc, cfg.documents.max_tokens), settings_from(cfg))
    finally:
        await rt.aclose()


async def _optimize_one(cfg: Config, seen: list[tuple[str, dict[str, Any]]]) -> None:
    from autodata.meta.optimizer import Optimizer

    with tempfile.TemporaryDirectory() as tmp:
        await Optimizer(cfg, Path(tmp) / "opt", runtime_factory=lambda c: recording_runtime(c, seen)).run()


def collect(name: str) -> tuple[Config, list[tuple[str, dict[str, Any]]]]:
    """Run example ``name`` (one document; a one-iteration optimization) and return what was sent."""
    overrides: list[str] = []
    if name == "optimize":
        overrides = [
            "optimize.iterations=1",
            "optimize.train_docs=1",
            "optimize.val_docs=1",
            "optimize.test_docs=0",
            "optimize.minibatch=1",
            "optimize.repeats=1",
            "optimize.canary_size=0",
        ]
    cfg = load_config(ROOT / "examples" / f"{name}.yaml", overrides)
    seen: list[tuple[str, dict[str, Any]]] = []
    cwd = Path.cwd()
    os.chdir(ROOT)  # example configs name their corpus relative to the repo root
    try:
        asyncio.run(_optimize_one(cfg, seen) if name == "optimize" else _run_one(cfg, seen))
    finally:
        os.chdir(cwd)
    return cfg, seen


def render_page(configs: Sequence[str] = CONFIGS) -> str:
    out = [
        "# What each model receives",
        "",
        "Generated by `python scripts/render_prompts.py` from the example configs: each ran one document on",
        "the simulated ladder, and the first request of each role is shown as it was sent (messages, the",
        "response schema asked for, sampling fields). Long documents are shown with their middle left out.",
        "Do not edit by hand: `tests/test_prompts_doc.py` fails when this page and the code disagree.",
        "",
    ]
    for name in configs:
        cfg, seen = collect(name)
        out += [f"## `examples/{name}.yaml` (profile `{cfg.loop.profile}`)", ""]
        shown: set[tuple[str, str | None]] = set()
        for endpoint, body in seen:
            schema = schema_name(body)
            if (endpoint, schema) in shown:
                continue
            shown.add((endpoint, schema))
            sampling = {k: body[k] for k in SAMPLING if k in body}
            out += [
                f"### {role_of(cfg, endpoint, schema)}",
                "",
                f"Endpoint `{endpoint}`, response schema `{schema or 'none (free text)'}`, sampling "
                f"`{json.dumps(sampling, sort_keys=True)}`.",
                "",
            ]
            for msg in body.get("messages", []):
                content = msg.get("content")
                if not isinstance(content, str):
                    content = json.dumps(content, ensure_ascii=False, indent=1)
                fence = "````" if "```" in content else "```"
                out += [f"**{msg.get('role')}**", "", f"{fence}text", elide(content), fence, ""]
    return "\n".join(out).rstrip() + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "prompts.md")
    ap.add_argument("--check", action="store_true", help="exit 1 when the page is out of date; write nothing")
    args = ap.parse_args(argv)
    page = render_page()
    if args.check:
        current = args.out.read_text(encoding="utf-8") if args.out.exists() else ""
        if current != page:
            print(f"{args.out} is out of date: run python scripts/render_prompts.py", file=sys.stderr)
            return 1
        return 0
    args.out.write_text(page, encoding="utf-8")
    print(f"wrote {args.out} ({len(page):,} characters)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
