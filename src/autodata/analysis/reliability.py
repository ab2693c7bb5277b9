"""Judge reliability: re-judge a sample of stored answers n times and measure how much the marks move.

A gap of 30 points means little if the judge's marks would move by 10 on a second reading. This
re-sends a seeded sample of a run's answers (weak and strong attempts alike) to the configured judge
``repeats`` times, each under its own sample index (so each is its own call, not a cache hit of the
run), and reports:

- agreement per criterion: for each (answer, criterion), the share of the n marks equal to their
  majority, averaged over all, over positive and over negative criteria; Fleiss' kappa over the
  same items; and how often a re-judging agrees with the mark stored in the run;
- score variance: the variance of each answer's score across the n judgings, averaged; and what that
  noise alone does to a gap: its standard deviation for one example (k weak and k strong attempts)
  and for the data set's mean gap.

A deterministic judge (temperature 0 on a server that honours it) scores agreement 1.0 and variance 0.
"""

from __future__ import annotations

import asyncio
import math
import random
from pathlib import Path
from statistics import fmean, variance
from typing import Any

from autodata.analysis.runs import load_run, write_json
from autodata.config import Config
from autodata.errors import UserError
from autodata.example import Attempt, Example
from autodata.judging import judge
from autodata.judging.rubric import score
from autodata.judging.schemas import RubricItem
from autodata.llm.runtime import ModelRuntime
from autodata.llm.types import CallError
from autodata.loop.profile import profile

SAMPLE_BASE = 50_000  # re-judgings use sample indices far from the run's own (0..k-1)


def fleiss_kappa(items: list[list[int]]) -> float | None:
    """Fleiss' kappa for 0/1 marks, each item rated the same number of times; None when undefined."""
    if not items:
        return None
    n = len(items[0])
    if n < 2:
        return None
    ones = sum(sum(marks) for marks in items)
    p1 = ones / (len(items) * n)
    pe = p1**2 + (1 - p1) ** 2
    if pe >= 1.0:
        return None  # every mark the same: agreement is perfect but chance explains it fully
    po = fmean((sum(m) ** 2 + (n - sum(m)) ** 2 - n) / (n * (n - 1)) for m in items)
    return (po - pe) / (1 - pe)


def _majority_share(marks: list[int]) -> float:
    ones = sum(marks)
    return max(ones, len(marks) - ones) / len(marks)


def summarise(judged: list[dict[str, Any]], *, k_weak: int, k_strong: int, examples: int) -> dict[str, Any]:
    """Pure: the report from re-judged answers (each with rubric weights, stored marks, n re-markings)."""
    items: list[list[int]] = []
    pos: list[float] = []
    neg: list[float] = []
    with_stored: list[float] = []
    variances: list[float] = []
    for a in judged:
        rows = a["remarks"]
        variances.append(variance([score(a["weights"], m) for m in rows]))
        for j, w in enumerate(a["weights"]):
            marks = [m[j] for m in rows]
            items.append(marks)
            (pos if w > 0 else neg).append(_majority_share(marks))
            with_stored.append(sum(m == a["stored"][j] for m in marks) / len(marks))
    mean_var = fmean(variances) if variances else None
    every = pos + neg
    return {
        "answers": len(judged),
        "criteria_marked": len(items),
        "agreement": fmean(every) if every else None,
        "agreement_positive_criteria": fmean(pos) if pos else None,
        "agreement_negative_criteria": fmean(neg) if neg else None,
        "agreement_with_stored_marks": fmean(with_stored) if with_stored else None,
        "fleiss_kappa": fleiss_kappa(items),
        "score_variance_mean": mean_var,
        "score_sd_mean": fmean(math.sqrt(v) for v in variances) if variances else None,
        "score_sd_max": max((math.sqrt(v) for v in variances), default=None),
        "gap_noise_sd_points_per_example": (
            100 * math.sqrt(mean_var * (1 / k_weak + 1 / k_strong)) if mean_var is not None else None
        ),
        "gap_noise_sd_points_dataset_mean": (
            100 * math.sqrt(mean_var * (1 / k_weak + 1 / k_strong) / examples)
            if mean_var is not None and examples
            else None
        ),
    }


async def judge_reliability(
    cfg: Config,
    run_dir: Path,
    *,
    answers: int = 30,
    repeats: int = 5,
    seed: int = 0,
    use_cache: bool = True,
    runtime: ModelRuntime | None = None,
) -> dict[str, Any]:
    if repeats < 2 or answers < 1:
        raise UserError("judge reliability needs --repeats >= 2 and --answers >= 1")
    run = load_run(run_dir)
    loop = (run.config or {}).get("loop") or {}
    prof = profile(loop.get("profile") or "rubric-qa")
    if not prof.scoring.needs_judge:
        raise UserError(f"{run_dir} is a {prof.name} run: its answers were checked in code, no judge marked them")
    endpoint = cfg.require_roles(("judge",), "autodata judge-reliability")["judge"]
    pool = [
        (ex, att)
        for ex in run.examples
        for side in ("weak", "strong")
        for att in (ex.weak if side == "weak" else ex.strong).attempts
        if att.marks is not None and att.answer
    ]
    if not pool:
        raise UserError(f"{run_dir}: no judged answers to re-judge")
    picked = random.Random(seed).sample(pool, min(answers, len(pool)))
    rt = runtime or ModelRuntime.from_config(cfg, use_cache=use_cache)
    failures: list[str] = []

    async def one(ex: Example, att: Attempt) -> dict[str, Any] | None:
        rubric = [RubricItem(criterion=c.criterion, weight=c.weight, category=c.category or "") for c in ex.rubric]
        answer = att.answer or ""
        calls = [judge.mark(rt, endpoint, ex.question, rubric, answer, sample=SAMPLE_BASE + r) for r in range(repeats)]
        results = await asyncio.gather(*calls, return_exceptions=True)
        remarks = []
        for res in results:
            if isinstance(res, CallError):
                failures.append(str(res))
            elif isinstance(res, BaseException):
                raise res
            else:
                remarks.append(res.marks)
        if len(remarks) < 2:
            return None
        return {
            "example_id": ex.id,
            "weights": [c.weight for c in rubric],
            "stored": att.marks,
            "remarks": remarks,
        }

    try:
        judged = [j for j in await asyncio.gather(*(one(ex, att) for ex, att in picked)) if j is not None]
    finally:
        if runtime is None:
            await rt.aclose()
    report = {
        "run": str(run_dir),
        "judge": cfg.models[endpoint].model,
        "repeats": repeats,
        "seed": seed,
        **summarise(
            judged,
            k_weak=int(loop.get("k_weak") or prof.k_weak),
            k_strong=int(loop.get("k_strong") or prof.k_strong),
            examples=len(run.examples),
        ),
        "failed_calls": len(failures),
        "failures": failures[:10],
        "per_answer": judged,
    }
    write_json(run_dir / "judge_reliability.json", report)
    return report
