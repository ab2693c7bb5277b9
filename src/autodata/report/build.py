"""Build the report file: detect what kind of directory this is, compute, draw, write one HTML file.

Kinds of directory map to builders in ``BUILDERS``: a run directory (``run.db`` from `autodata
run`, or a baseline's) and an ``optimize`` directory (``population.jsonl`` and a summary of kind
``optimize``), whose report shows the pass rate over iterations and the lineage of recipes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from autodata.errors import UserError
from autodata.glossary import rejection_words
from autodata.report.data import RunData, load_run
from autodata.report.figures import MEAN_CHECKS, RUN_FIGURES, Figure_, lineage_figure, pass_rate_figure, render
from autodata.store.files import atomic_text


@dataclass(slots=True)
class Report:
    kind: str
    title: str
    headline: list[tuple[str, str]]
    figures: list[Figure_]
    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _money(x: float | None) -> str:
    return "—" if x is None else f"${x:.4f}"


def run_report(run_dir: Path) -> Report:
    d: RunData = load_run(run_dir)
    s = d.summary
    docs = s["documents"]
    accepted = d.accepted
    # what the examples cost to make (store/costs.py): the same for a run replayed from the call cache
    tokens = sum(int(u["input_tokens"]) + int(u["output_tokens"]) for u in d.usage_by_role.values())
    calls = sum(int(u["calls"]) for u in d.usage_by_role.values())
    hits = sum(int(u["cache_hits"]) for u in d.usage_by_role.values())
    cost = sum(float(u["cost_usd"]) for u in d.usage_by_role.values())
    headline = [
        ("documents", str(docs["total"])),
        ("accepted examples", str(accepted)),
        ("exhausted documents", str(docs["exhausted"])),
        ("skipped inputs", str(sum(docs["skipped"].values()))),
        ("acceptance rate", f"{100 * s['acceptance_rate']:.0f}%"),
        ("rounds", str(s["rounds"])),
        ("model calls behind the documents", str(calls)),
        ("of them answered from the call cache", str(hits)),
        ("calls per accepted example", f"{calls / accepted:.2f}" if accepted else "—"),
        ("tokens", f"{tokens:,}"),
        ("tokens per accepted example", f"{tokens / accepted:,.0f}" if accepted else "—"),
        ("cost to make (cached answers at their price)", _money(cost)),
        ("cost per accepted example", _money(cost / accepted if accepted else None)),
        ("paid this session", _money((s.get("this_session") or {}).get("cost_usd"))),
        ("paid in all sessions", f"{_money(s['cost_usd'])} ({s['calls']} calls sent)"),
        ("reviewed", ", ".join(f"{k} {v}" for k, v in d.reviewed.items())),
        ("acceptance preset", d.info.preset_name),
        ("recipe", str(d.info.recipe_hash)),
        ("models", ", ".join(f"{r}: {m}" for r, m in d.info.models.items())),
    ]
    roles = [
        {
            "role": role,
            "calls": int(u["calls"]),
            "cache_hits": int(u["cache_hits"]),
            "input_tokens": int(u["input_tokens"]),
            "output_tokens": int(u["output_tokens"]),
            "cost_usd": float(u["cost_usd"]),
            "tokens_per_accepted": round((u["input_tokens"] + u["output_tokens"]) / accepted) if accepted else None,
            "cost_per_accepted": float(u["cost_usd"]) / accepted if accepted else None,
        }
        for role, u in sorted(d.usage_by_role.items())
    ]
    notes = []
    if d.info.simulated:
        notes.append("This run used SIMULATED models: the numbers show the pipeline, not a real model's quality.")
    sandbox = s.get("sandbox")
    if sandbox:
        headline.append((f"sandbox runs ({sandbox['kind']})", str(sandbox["runs"])))
        per = sandbox["seconds_per_accepted_example"]
        headline.append(("sandbox seconds per accepted example", "—" if per is None else f"{per:.2f}"))
        if sandbox.get("warning"):
            notes.append(f"WARNING: {sandbox['warning']}.")
    p = d.info.preset
    if p is None or not any(getattr(p, name) for name in MEAN_CHECKS):
        notes.append(
            f"The '{d.info.preset_name}' preset has no thresholds on mean scores, so the scatter plot draws no region."
        )
    return Report(
        kind="run",
        title=f"autodata run report: {run_dir.resolve().name}",
        headline=headline,
        figures=render(d, RUN_FIGURES),
        tables={
            "roles": roles,
            "funnel": [{"step": k, "count": v} for k, v in d.funnel],
            "rejections": [
                {"code": code, "rounds": n, "meaning": rejection_words(code)} for code, n in d.rejections.most_common()
            ],
        },
        notes=notes,
    )


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.1f}%"


def optimize_report(path: Path) -> Report:
    import json

    population = [json.loads(x) for x in (path / "population.jsonl").read_text(encoding="utf-8").splitlines() if x]
    if not population:
        raise UserError(f"{path}/population.jsonl is empty: the optimizer has not evaluated its starting recipe yet")
    try:
        summary = json.loads((path / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        summary = {}  # still running: the population is checkpointed after every iteration, the summary at the end
    base, best = summary.get("baseline") or {}, summary.get("best") or {}
    headline = [
        ("iterations", str(len(population) - 1)),
        ("children kept", str(sum(1 for c in population[1:] if c.get("accepted")))),
        ("starting recipe, validation", _pct(population[0].get("val_mean"))),
        ("best recipe", str(best.get("hash", "—"))),
        ("best, validation", _pct(best.get("val_pass_rate"))),
        ("starting recipe, test", _pct(base.get("test_pass_rate"))),
        ("best, test", _pct(best.get("test_pass_rate"))),
        ("hacking attempts blocked", str(summary.get("hacking_attempts_blocked", "—"))),
        ("canary checks", str(len((summary.get("canary") or {}).get("checks", [])))),
        ("frozen hash", str(summary.get("frozen_hash", "—"))),
        ("tokens", f"{summary['tokens']:,}" if "tokens" in summary else "—"),
        ("cost", _money(summary.get("cost_usd"))),
    ]
    lineage = [
        {
            "iteration": c["iteration"] + 1,
            "hash": c.get("hash", ""),
            "parent": c.get("parent") or "",
            "val": _pct(c.get("val_mean")) + (f" ± {100 * c['val_spread']:.1f} pts" if c.get("val_spread") else ""),
            "kept": "yes" if c.get("accepted") else "no",
            "reason": c.get("reason", ""),
            "edits": ", ".join(sorted({e.get("component", "?") for e in c.get("edits") or []})),
        }
        for c in population
    ]
    notes = [] if summary else ["The optimizer has not finished: this shows the iterations checkpointed so far."]
    figures = [
        Figure_(
            "pass-rate",
            "Validation pass rate over iterations",
            "Every evaluated child, and the best recipe so far.",
            pass_rate_figure(population),
        ),
        Figure_(
            "lineage",
            "Lineage of recipes",
            "Each evaluated recipe at its validation pass rate, joined to its parent; kept children in green.",
            lineage_figure(population),
        ),
    ]
    return Report(
        kind="optimize",
        title=f"autodata optimize report: {path.resolve().name}",
        headline=headline,
        figures=figures,
        tables={"lineage": lineage},
        notes=notes,
    )


Builder = Callable[[Path], Report]
BUILDERS: dict[str, Builder] = {"run": run_report, "optimize": optimize_report}


def kind_of(path: Path) -> str:
    if (path / "run.db").is_file():
        return "run"
    if (path / "population.jsonl").is_file():
        return "optimize"
    raise UserError(
        f"{path} is not a run directory (no run.db) nor an optimize directory (no population.jsonl); "
        "`autodata report` reads what `autodata run` or `autodata optimize` wrote"
    )


def write_report(path: Path, out: Path | None = None) -> tuple[Path, Report]:
    report = BUILDERS[kind_of(path)](path)
    env = Environment(loader=PackageLoader("autodata.report", "templates"), autoescape=select_autoescape(default=True))
    html = env.get_template("report.html").render(
        report=report, run_dir=str(path), generated=time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    )
    target = out or path / "report.html"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_text(target, html)
    except OSError as exc:
        raise UserError(f"cannot write {target}: {exc.strerror or exc}") from None
    return target, report
