"""``autodata baseline``: one round of a baseline writer per document, then the loop's own evaluator.

The inner loop's driver (``autodata.loop.run.run``) and episode (``run_episode``) do the work, with
three changes set here: the challenger's seat goes to the baseline writer, the round budget is one,
and the strong solver always runs (``weak_first`` off) so every example has a measured gap. The same
quality verifier, solvers, judge, scoring and acceptance predicate decide; the output layout is the
same as ``autodata run``'s, so ``status``, ``compare`` and ``dedup`` read it.

What differs from the loop is which examples are kept: every example that passed the quality check
and was solved goes to ``examples.jsonl``, with ``meets_acceptance`` saying whether the loop would
have accepted it. The baselines' data sets are what they generate, not what the predicate selects.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

from autodata.analysis.runs import write_json
from autodata.baselines.consistency import answer_consistency
from autodata.baselines.generators import Method, check_profile, load_seeds, method, own_context, proposer
from autodata.config import Config
from autodata.documents import Document
from autodata.example import Example
from autodata.llm.endpoint import WaitHook
from autodata.llm.runtime import ModelRuntime
from autodata.loop.episode import Episode, EpisodeSettings
from autodata.loop.run import DocumentJob, ProgressFn, RecordFn, example_record, recipe_hash, run, settings_from
from autodata.prompts import template_source


def baseline_recipe(
    cfg: Config, m: Method, seeds: list[dict[str, Any]], answer_check: bool, roles: dict[str, str] | None = None
) -> str:
    """The loop's recipe plus what decides a baseline's output: method, its prompts, the seed tasks.
    ``roles``: the run's roles when already computed (``EpisodeSettings.endpoints.roles()``)."""
    payload = {
        "loop": recipe_hash(cfg, roles),
        "method": m.name,
        "templates": {name: template_source(name) for name in (m.template, "baseline_fields.j2")},
        "output": [m.output.__name__, m.short_output.__name__],
        "seeds": seeds if m.shots else [],
        "shots": m.shots,
        "answer_consistency": answer_check,
    }
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return "bl-" + hashlib.sha256(blob.encode()).hexdigest()[:16]


def baseline_record(m: Method, *, answer_check: bool = False) -> RecordFn:
    """Keep the round's example when it was solved; mark whether it meets the acceptance predicate."""

    def record(doc: Document, episode: Episode, job: DocumentJob) -> Example | None:
        rnd = episode.rounds[0]
        if rnd.strong is None or rnd.decision is None or rnd.example is None:
            return None  # no usable example, or it failed the quality check: nothing was solved
        if answer_check:
            verdict = answer_consistency(rnd.example["reference_answer"], [a.answer for a in rnd.strong])
            rnd.quality = {**(rnd.quality or {}), "answer_consistency": verdict.to_dict()}
            if not verdict.passed:
                return None
        ex = example_record(doc, episode, rnd, job)
        weak, strong = ex.weak.mean, ex.strong.mean
        if ex.gap is None and weak is not None and strong is not None:
            ex.gap = strong - weak  # the final quality pass failed: the decision carries no gap, the scores do
        for key in ("reasoning", "solution"):  # what the writer said beyond the example, when it said it
            if rnd.example.get(key):
                setattr(ex, key, rnd.example[key])
        ex.method = m.name
        ex.meets_acceptance = rnd.accepted
        ex.acceptance = rnd.decision.to_dict()
        return ex

    return record


def tally(out_dir: Path) -> dict[str, int]:
    """Where each document's baseline example ended up, from ``episodes.jsonl``."""
    counts: Counter[str] = Counter()
    with (out_dir / "episodes.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            rnd = json.loads(line)["rounds"][0]
            quality = rnd.get("quality") or {}
            if rnd.get("example") is None:
                counts["generation_failed"] += 1
            elif rnd.get("strong") is None:
                counts["quality_failed" if rnd.get("decision") else "evaluation_failed"] += 1
            elif not (quality.get("answer_consistency") or {"passed": True})["passed"]:
                counts["answer_inconsistent"] += 1
            else:
                counts["evaluated"] += 1
                counts["meeting_acceptance"] += bool(rnd["decision"]["accepted"])
    return {k: counts.get(k, 0) for k in (
        "evaluated", "meeting_acceptance", "generation_failed", "quality_failed", "evaluation_failed",
        "answer_inconsistent",
    )}  # fmt: skip


async def run_baseline(
    cfg: Config,
    out_dir: Path,
    method_name: str,
    *,
    seeds_path: Path | None = None,
    limit: int | None = None,
    force_new_recipe: bool = False,
    use_cache: bool = True,
    on_progress: ProgressFn | None = None,
    runtime: ModelRuntime | None = None,
    answer_check: bool | None = None,
    on_wait: WaitHook | None = None,
    settings: EpisodeSettings | None = None,
) -> dict[str, Any]:
    """``answer_check`` (CoT Self-Instruct's Answer-Consistency filter) defaults to on exactly where the
    paper uses it: CoT Self-Instruct under a profile with exact answers (``verifiable``). ``settings``: the
    loop's settings when the caller already computed them (the run's roles, once); the writer then takes
    the challenger's seat in a copy of them."""
    m = method(method_name)
    check_profile(cfg.loop.profile)
    seeds = load_seeds(seeds_path)
    base = settings or settings_from(cfg)
    exact = base.profile.scoring.short_answer
    if answer_check is None:
        answer_check = exact and m.name == "cot-self-instruct"
    settings = replace(
        base,
        max_rounds=1,
        weak_first=False,
        orchestrator="scripted",  # one fixed round: there is nothing for an agent to decide
        propose=proposer(
            m, base.endpoints.challenger, seeds, run_seed=cfg.seed, rules=base.rubric_rules, short_answer=exact
        ),
        grounding=None if m.uses_document else own_context,
    )
    summary = await run(
        cfg,
        out_dir,
        limit=limit,
        force_new_recipe=force_new_recipe,
        use_cache=use_cache,
        on_progress=on_progress,
        runtime=runtime,
        settings=settings,
        record=baseline_record(m, answer_check=answer_check),
        recipe=baseline_recipe(cfg, m, seeds, answer_check, base.endpoints.roles()),
        command="baseline",
        on_wait=on_wait,
    )
    summary["method"] = m.name
    summary["baseline"] = tally(out_dir)
    write_json(out_dir / "summary.json", summary)
    return summary
