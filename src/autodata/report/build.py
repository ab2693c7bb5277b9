"""Build the report file: detect what kind of directory this is, compute, draw, write one HTML file.

Kinds of directory map to builders in ``BUILDERS``. A run directory (``run.db`` from `autodata
run`) is the only kind today; the outer loop's ``optimize`` directory (pass rate over iterations,
lineage of recipes) gets its own builder here when that command exists, reusing ``figures.render``
and the same template.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from autodata.errors import UserError
from autodata.report.data import RunData, load_run
from autodata.report.figures import MEAN_CHECKS, RUN_FIGURES, Figure_, render


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
    tokens = sum(int(u["input_tokens"]) + int(u["output_tokens"]) for u in d.usage_by_role.values())
    headline = [
        ("documents", str(docs["total"])),
        ("accepted examples", str(accepted)),
        ("exhausted documents", str(docs["exhausted"])),
        ("skipped inputs", str(sum(docs["skipped"].values()))),
        ("acceptance rate", f"{100 * s['acceptance_rate']:.0f}%"),
        ("rounds", str(s["rounds"])),
        ("model calls", str(s["calls"])),
        ("calls per accepted example", str(s["calls_per_accepted_example"] or "—")),
        ("tokens", f"{tokens:,}"),
        ("tokens per accepted example", f"{tokens / accepted:,.0f}" if accepted else "—"),
        ("cost", _money(s["cost_usd"])),
        ("cost per accepted example", _money(s["cost_per_accepted_example"])),
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
        tables={"roles": roles, "funnel": [{"step": k, "count": v} for k, v in d.funnel]},
        notes=notes,
    )


Builder = Callable[[Path], Report]
BUILDERS: dict[str, Builder] = {"run": run_report}


def kind_of(path: Path) -> str:
    if (path / "run.db").is_file():
        return "run"
    raise UserError(f"{path} is not a run directory (no run.db); `autodata report` reads what `autodata run` wrote")


def write_report(path: Path, out: Path | None = None) -> tuple[Path, Report]:
    report = BUILDERS[kind_of(path)](path)
    env = Environment(loader=PackageLoader("autodata.report", "templates"), autoescape=select_autoescape(default=True))
    html = env.get_template("report.html").render(
        report=report, run_dir=str(path), generated=time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    )
    target = out or path / "report.html"
    tmp = target.with_suffix(target.suffix + ".tmp")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(html, encoding="utf-8")
        tmp.replace(target)
    except OSError as exc:
        raise UserError(f"cannot write {target}: {exc.strerror or exc}") from None
    return target, report
