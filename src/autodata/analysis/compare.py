"""``autodata compare``: the paper's Table 1 for any runs, with bootstrap confidence intervals.

Per run: examples; weak mean, strong mean and gap (means over examples of the per-example means, in
percent and points); rounds per example; question length; rubric items; calls, tokens and cost per
example (what the examples cost to make: cached answers at their price, so a run replayed from the
call cache compares like the run that paid); the share of examples that meet one acceptance preset
(recomputed here from the stored scores, so runs made under different presets are judged by the
same rule); then diversity (question types, skills, document coverage, pairwise similarity,
near-duplicate pairs) and the contamination flags a ``contamination`` check left in the summary.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from autodata.analysis.diversity import diversity
from autodata.analysis.runs import RunData, write_json
from autodata.analysis.similarity import tokens
from autodata.analysis.stats import bootstrap_mean
from autodata.example import Example
from autodata.judging.acceptance import Preset, decide, preset
from autodata.loop.profile import profile


def meets(example: Example, p: Preset) -> bool:
    """Whether the example's stored scores meet preset ``p`` (its quality verdict counted)."""
    weak, strong = example.weak.scores(), example.strong.scores()
    if not weak or not strong:
        return False  # not evaluated by both solvers: nothing to decide on
    passed = example.quality.passed if example.quality is not None else True
    return decide(p, quality_passed=passed, weak=weak, strong=strong).accepted


def run_preset(run: RunData) -> Preset:
    """The preset the run was made under: the config's, else its profile's (a config names either)."""
    loop = (run.config or {}).get("loop") or {}
    acc = loop.get("acceptance") or {}
    name = acc.get("preset") or profile(loop.get("profile") or "rubric-qa").preset
    return preset(name, **(acc.get("overrides") or {}))


def made_cost(summary: dict[str, Any]) -> dict[str, Any]:
    """Calls, tokens and cost behind a run's documents (``summary["made"]``, ``store/costs.py``); for a
    summary written before it existed, what its sessions paid (all a cached run of then could show)."""
    if summary.get("made"):
        return summary["made"]
    roles = (summary.get("usage_by_role") or {}).values()
    return {
        "calls": summary.get("calls", 0),
        "input_tokens": sum(r.get("input_tokens", 0) for r in roles),
        "output_tokens": sum(r.get("output_tokens", 0) for r in roles),
        "cost_usd": summary.get("cost_usd", 0.0),
    }


def table_row(run: RunData, p: Preset, *, resamples: int = 2000, seed: int = 0) -> dict[str, Any]:
    exs = run.examples
    n = len(exs)

    def est(values: Sequence[float], scale: float = 1.0) -> dict[str, float | int] | None:
        e = bootstrap_mean([v * scale for v in values], resamples=resamples, seed=seed)
        return e.to_dict() if e else None

    both = [(e.weak.mean, e.strong.mean) for e in exs if e.weak.mean is not None and e.strong.mean is not None]
    weak = [w for w, _ in both]
    strong = [s for _, s in both]
    summary = run.summary
    made = made_cost(summary)
    per = (lambda x: x / n) if n else (lambda x: None)
    return {
        "run": str(run.path),
        "method": run.method,
        "examples": n,
        "documents": len(run.episodes) or None,
        "weak_pct": est(weak, 100),
        "strong_pct": est(strong, 100),
        "gap_points": est([s - w for w, s in zip(weak, strong, strict=True)], 100),
        "rounds_per_example": est([e.rounds or 1 for e in exs]),
        "rounds_total": summary.get("rounds"),
        "question_words": est([len(tokens(e.question)) for e in exs]),
        "rubric_items": est([len(e.rubric) for e in exs]),
        # what the examples cost to make (cached answers valued at their price), not what the last
        # session paid: a run answered from the call cache costs the same per example as its first run
        "calls_per_example": per(made["calls"]),
        "tokens_per_example": per(made["input_tokens"] + made["output_tokens"]),
        "cost_per_example_usd": per(made["cost_usd"]),
        "paid_usd": summary.get("cost_usd", 0.0),
        "meets_preset_pct": est([100.0 * meets(e, p) for e in exs]),
        "diversity": diversity(exs, documents=len(run.episodes) or None),
        "contamination": summary.get("contamination"),
        "simulated_models": summary.get("simulated_models", []),
    }


def compare(runs: Sequence[RunData], *, preset_name: str | None = None, resamples: int = 2000, seed: int = 0) -> dict:
    p = preset(preset_name) if preset_name else run_preset(runs[0])
    return {
        "preset": p.name,
        "confidence": 0.95,
        "resamples": resamples,
        "rows": [table_row(r, p, resamples=resamples, seed=seed) for r in runs],
    }


# ------------------------------------------------------------------------------------------ rendering


def _ci(e: dict[str, Any] | None, digits: int = 1) -> str:
    if not e:
        return "–"
    return f"{e['mean']:.{digits}f} [{e['low']:.{digits}f}, {e['high']:.{digits}f}]"


def label(row: dict[str, Any]) -> str:
    name = Path(row["run"]).name
    return row["method"] if name == row["method"] else f"{row['method']} ({name})"


def _num(x: float | None, digits: int = 1) -> str:
    return "–" if x is None else f"{x:,.{digits}f}"


def main_table(result: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    head = [
        "run",
        "examples",
        "weak %",
        "strong %",
        "gap (points)",
        "rounds / example",
        "question words",
        "rubric items",
        "calls / example",
        "tokens / example",
        "cost / example ($)",
        f"meets {result['preset']} %",
    ]
    rows = [
        [
            label(r),
            str(r["examples"]),
            _ci(r["weak_pct"]),
            _ci(r["strong_pct"]),
            _ci(r["gap_points"]),
            _ci(r["rounds_per_example"], 2),
            _ci(r["question_words"]),
            _ci(r["rubric_items"]),
            _num(r["calls_per_example"]),
            _num(r["tokens_per_example"], 0),
            _num(r["cost_per_example_usd"], 4),
            _ci(r["meets_preset_pct"]),
        ]
        for r in result["rows"]
    ]
    return head, rows


def diversity_table(result: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    head = [
        "run",
        "question types (evenness)",
        "top question type",
        "skills (evenness)",
        "documents covered",
        "similarity mean / p95 / max",
        "near-duplicate pairs",
        "contamination flagged",
    ]
    rows = []
    for r in result["rows"]:
        d = r["diversity"]
        qt, sk, docs, sim = d["question_types"], d["reasoning_skills"], d["documents"], d["similarity"]
        top = qt["top"][0] if qt["top"] else None
        cont = r.get("contamination")
        rows.append(
            [
                label(r),
                f"{qt['distinct']} ({_num(qt['evenness'], 2)})",
                f"{top['label']} {100 * top['share']:.0f}%" if top else "–",
                f"{sk['distinct']} ({_num(sk['evenness'], 2)})",
                f"{docs['with_examples']}/{docs['finished']}" if docs["finished"] else str(docs["with_examples"]),
                f"{sim['mean']:.2f} / {sim['p95']:.2f} / {sim['max']:.2f}" if sim else "–",
                str(d["near_duplicate_pairs"]),
                f"{cont['flagged']}/{cont['checked']}" if cont else "not checked",
            ]
        )
    return head, rows


def markdown(result: dict[str, Any]) -> str:
    def table(head: list[str], rows: list[list[str]]) -> list[str]:
        out = ["| " + " | ".join(head) + " |", "|" + "|".join(" --- " for _ in head) + "|"]
        out += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
        return out

    lines = [
        "# Comparison",
        "",
        f"Means over examples with {int(100 * result['confidence'])} % bootstrap confidence intervals "
        f"({result['resamples']} resamples). Acceptance recomputed with the `{result['preset']}` preset.",
        "",
        *table(*main_table(result)),
        "",
        "## Diversity",
        "",
        *table(*diversity_table(result)),
    ]
    if any(r["simulated_models"] for r in result["rows"]):
        lines += ["", "Runs on SIMULATED models (offline stand-ins, not real LLMs) are included."]
    return "\n".join(lines) + "\n"


def write(result: dict[str, Any], out_dir: Path) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    md, js = out_dir / "compare.md", out_dir / "compare.json"
    md.write_text(markdown(result), encoding="utf-8")
    write_json(js, result)
    return md, js
