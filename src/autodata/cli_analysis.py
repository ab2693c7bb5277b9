"""Commands for baselines and data-set analysis: ``baseline``, ``compare``, ``dedup``, ``judge-reliability``,
``contamination``. Registered on the main Typer app (``autodata.cli_common.app``) when ``autodata.cli``
imports this module; thin like the rest of the CLI.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from autodata.cli_common import (
    ConfigArg,
    ForceOpt,
    LimitOpt,
    NoCacheOpt,
    NoPreflightOpt,
    QuietOpt,
    SetOpt,
    _exit_if_run_failed,
    _load,
    _preflight,
    _print_run_summary,
    _simulated_banner,
    _with_progress,
    app,
    err,
    out,
    wait_printer,
)
from autodata.errors import UserError


@app.command()
def baseline(
    config: ConfigArg = None,
    method: Annotated[
        str, typer.Option("--method", "-m", help="self-instruct, grounded or cot-self-instruct.")
    ] = "cot-self-instruct",
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Run directory (created; reused to resume).")] = Path(
        "runs/baseline"
    ),
    seeds: Annotated[
        Path | None,
        typer.Option("--seeds", help="JSONL of seed tasks (question, reference_answer[, context]); default: built in."),
    ] = None,
    limit: LimitOpt = None,
    force_new_recipe: ForceOpt = False,
    no_cache: NoCacheOpt = False,
    quiet: QuietOpt = False,
    set_: SetOpt = None,
    no_preflight: NoPreflightOpt = False,
) -> None:
    """One round of a baseline writer per document, judged by the loop's own verifier, solvers and judge."""
    from autodata.baselines.generators import check_profile
    from autodata.baselines.generators import method as check_method
    from autodata.baselines.run import run_baseline
    from autodata.loop.run import settings_from

    check_method(method)
    cfg = _load(config, set_)
    check_profile(cfg.loop.profile)  # before any pre-flight call: a profile the writers cannot write
    settings = settings_from(cfg)  # the run's roles, computed once: pre-flight and the baseline read them here
    roles = settings.endpoints.roles()
    said_simulated = [] if no_preflight else _preflight(cfg, roles, quiet=quiet)
    _simulated_banner(cfg, roles.values(), said_simulated)

    async def go() -> dict[str, Any]:
        return await _with_progress(
            f"baseline {method}",
            limit,
            quiet,
            lambda tick: run_baseline(
                cfg,
                out_dir,
                method,
                seeds_path=seeds,
                limit=limit,
                force_new_recipe=force_new_recipe,
                use_cache=not no_cache,
                on_progress=tick,
                on_wait=wait_printer(),
                settings=settings,
            ),
            lambda p: (
                p.documents_done + p.failed,
                f"meets acceptance {p.accepted} | failed {p.failed} | calls {p.calls} tok {p.tokens:,} "
                f"${p.cost_usd:.4f}",
            ),
        )

    summary = asyncio.run(go())
    _print_run_summary(summary)
    b = summary["baseline"]
    out.print(
        f"{method}: {b['evaluated']} examples evaluated, {b['meeting_acceptance']} meet the acceptance predicate; "
        f"dropped: quality check {b['quality_failed']}, generation failed {b['generation_failed']}"
        + (f", answer consistency {b['answer_inconsistent']}" if b["answer_inconsistent"] else ""),
        markup=False,
        highlight=False,
    )
    _exit_if_run_failed(summary)


def _print_table(title: str, head: list[str], rows: list[list[str]]) -> None:
    table = Table(title=title)
    for h in head:
        table.add_column(h, overflow="fold")
    for row in rows:
        table.add_row(*row)
    out.print(table)


@app.command()
def compare(
    runs: Annotated[list[Path], typer.Argument(help="Run directories (autodata run / baseline).")],
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Where compare.md and compare.json go.")] = Path(
        "runs/compare"
    ),
    preset: Annotated[
        str | None, typer.Option("--preset", help="Acceptance preset for the 'meets' column (default: first run's).")
    ] = None,
    dedup: Annotated[
        bool, typer.Option("--dedup", help="Read examples.dedup.jsonl where a dedup step wrote one.")
    ] = False,
    resamples: Annotated[int, typer.Option("--resamples", min=100, help="Bootstrap resamples.")] = 2000,
    seed: Annotated[int, typer.Option(help="Bootstrap seed.")] = 0,
) -> None:
    """The paper's Table 1 for any runs, with 95 % bootstrap intervals, plus diversity; markdown and JSON."""
    from autodata.analysis import compare as cmp
    from autodata.analysis.dedup import DEDUP_FILE
    from autodata.analysis.runs import load_run

    if preset is not None:
        from autodata.judging.acceptance import PRESETS

        if preset not in PRESETS:
            raise UserError(f"unknown preset {preset!r}; expected one of: {', '.join(PRESETS)}")
    loaded = [
        load_run(r, examples_file=DEDUP_FILE if dedup and (r / DEDUP_FILE).exists() else "examples.jsonl") for r in runs
    ]
    result = cmp.compare(loaded, preset_name=preset, resamples=resamples, seed=seed)
    out.print(cmp.markdown(result), markup=False, highlight=False)  # wide: read best as markdown, also in a log
    md, js = cmp.write(result, out_dir)
    out.print(f"wrote {md} and {js}", markup=False, highlight=False)


@app.command()
def dedup(
    run_dir: Annotated[Path, typer.Argument(help="A run directory.")],
    threshold: Annotated[float, typer.Option(help="Similarity at which two examples are near-duplicates.")] = 0.7,
    on: Annotated[str, typer.Option(help="Compare 'task' (context + question) or 'question' only.")] = "task",
    shingle: Annotated[int, typer.Option(min=1, help="Words per shingle (MinHash).")] = 3,
    embeddings: Annotated[
        str | None, typer.Option(help="Endpoint name (from --config) of an embedding model to use instead of MinHash.")
    ] = None,
    config: Annotated[Path | None, typer.Option("--config", help="Config naming the embedding endpoint.")] = None,
    set_: SetOpt = None,
) -> None:
    """Find near-duplicate examples, keep the best of each cluster (examples.dedup.jsonl + dedup.json)."""
    from autodata.analysis.dedup import dedup_run

    if on not in ("task", "question"):
        raise UserError("--on must be 'task' or 'question'")
    if embeddings is None:
        result = dedup_run(run_dir, threshold=threshold, on=on, shingle=shingle)
    else:
        from autodata.analysis.embeddings import embedding_pairs

        cfg = _load(config, set_)
        result = asyncio.run(embedding_pairs(cfg, embeddings, run_dir, threshold=threshold, on=on))
    out.print(
        f"{result['examples_before']} examples, {len(result['clusters'])} near-duplicate clusters, "
        f"{result['dropped']} dropped, {result['examples_after']} kept ({result['method']}, threshold "
        f"{result['threshold']:g}); wrote {result['outputs']['examples']} and {result['outputs']['report']}",
        markup=False,
        highlight=False,
    )


@app.command("judge-reliability")
def judge_reliability(
    run_dir: Annotated[Path, typer.Argument(help="A run directory.")],
    config: ConfigArg = None,
    answers: Annotated[int, typer.Option(min=1, help="Answers sampled from the run.")] = 30,
    repeats: Annotated[int, typer.Option(min=2, help="Judgings per answer.")] = 5,
    seed: Annotated[int, typer.Option(help="Sampling seed.")] = 0,
    no_cache: NoCacheOpt = False,
    set_: SetOpt = None,
) -> None:
    """Re-judge a sample of answers n times: agreement per criterion, score variance, judge noise on the gap."""
    from autodata.analysis.reliability import judge_reliability as check

    cfg = _load(config, set_)
    report = asyncio.run(check(cfg, run_dir, answers=answers, repeats=repeats, seed=seed, use_cache=not no_cache))

    def f(x: float | None, scale: float = 1.0, digits: int = 3) -> str:
        return "–" if x is None else f"{scale * x:.{digits}f}"

    rows = [
        ["answers re-judged", str(report["answers"])],
        ["judgings per answer", str(report["repeats"])],
        ["agreement (all criteria)", f(report["agreement"])],
        ["agreement, positive / negative criteria", f"{f(report['agreement_positive_criteria'])} / "
         f"{f(report['agreement_negative_criteria'])}"],
        ["agreement with the run's stored marks", f(report["agreement_with_stored_marks"])],
        ["Fleiss' kappa", f(report["fleiss_kappa"])],
        ["score SD per answer, mean / max", f"{f(report['score_sd_mean'])} / {f(report['score_sd_max'])}"],
        ["judge noise on one example's gap (SD, points)", f(report["gap_noise_sd_points_per_example"], digits=2)],
        ["judge noise on the mean gap (SD, points)", f(report["gap_noise_sd_points_dataset_mean"], digits=2)],
        ["failed calls", str(report["failed_calls"])],
    ]  # fmt: skip
    _print_table(f"judge reliability: {report['judge']}", ["what", "value"], rows)
    out.print(f"wrote {run_dir / 'judge_reliability.json'}", markup=False, highlight=False)


@app.command()
def contamination(
    run_dir: Annotated[Path, typer.Argument(help="A run directory.")],
    benchmark: Annotated[Path, typer.Option("--benchmark", "-b", help="Benchmark file: .jsonl, .json or text lines.")],
    field: Annotated[str | None, typer.Option(help="Text field of JSON items (default: question, prompt, …).")] = None,
    ngram: Annotated[int, typer.Option(min=1, help="Words per n-gram.")] = 8,
    threshold: Annotated[
        float, typer.Option(help="Share of a question's n-grams found in the benchmark to flag it.")
    ] = 0.5,
) -> None:
    """Flag generated questions whose word n-grams overlap a benchmark's (contamination.json, summary.json)."""
    from autodata.analysis.contamination import check_run

    result = check_run(run_dir, benchmark, field=field, n=ngram, threshold=threshold)
    out.print(
        f"{result['flagged']} of {result['checked']} questions flagged (>= {100 * threshold:.0f}% of their "
        f"{ngram}-grams in {result['benchmark_items']} benchmark items; highest overlap "
        f"{100 * result['max_overlap']:.0f}%); wrote {run_dir / 'contamination.json'} and updated summary.json",
        markup=False,
        highlight=False,
    )
    for row in result["flagged_examples"][:5]:
        err.print(f"  flagged {row['id']}: {100 * row['overlap']:.0f}% overlap", markup=False, highlight=False)
