"""What the command modules share: the Typer app, the consoles, common options, config loading,
pre-flight, progress bars and the run summary.

``autodata.cli`` and ``autodata.cli_analysis`` both register their commands on :data:`app` and
import from here; neither imports the other's helpers, so the two command modules form no circle
(``cli`` imports ``cli_analysis`` only to register its commands).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Column, Table

from autodata.config import Config, load_config
from autodata.errors import UserError

T = TypeVar("T")

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="autodata: grounded, discriminative LLM training and evaluation data from documents.",
)

err = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)

ConfigArg = Annotated[
    Path | None,
    typer.Argument(
        help="YAML config. Omit to use the embedded offline default (simulated models).", show_default=False
    ),
]
SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", help="Override a config key: --set models.weak.rpm=600 (repeatable)."),
]
# options several commands share, declared once
LimitOpt = Annotated[int | None, typer.Option("--limit", min=1, help="At most this many documents.")]
ForceOpt = Annotated[
    bool, typer.Option("--force-new-recipe", help="Continue a started run with a changed config/prompts.")
]
NoCacheOpt = Annotated[bool, typer.Option("--no-cache", help="Neither read nor write the call cache.")]
NoPreflightOpt = Annotated[
    bool,
    typer.Option("--no-preflight", help="Skip the pre-flight check of each endpoint (model served, one call, schema)."),
]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")]


def default_config_text() -> str:
    return resources.files("autodata").joinpath("defaults/simulated.yaml").read_text(encoding="utf-8")


def _load(config: Path | None, overrides: list[str] | None) -> Config:
    from autodata.llm.runtime import check_endpoints

    cfg = load_config(config, overrides or [], default_text=default_config_text())
    check_endpoints(cfg)
    return cfg


def _simulated_banner(cfg: Config, names: Iterable[str | None], also: Iterable[str] = ()) -> None:
    """Say which of the endpoints a command uses are simulated, so no one mistakes their output.
    ``also``: endpoints whose server said it is the simulator (``serve-sim`` behind ``provider: openai``)."""
    simulated = sorted({n for n in names if n and cfg.models[n].provider == "simulated"} | set(also))
    if simulated:
        err.print(f"[yellow]SIMULATED models (offline stand-ins, not real LLMs): {', '.join(simulated)}[/]")


async def _with_progress(
    title: str,
    total: int | None,
    quiet: bool,
    call: Callable[[Callable[[Any], None] | None], Awaitable[T]],
    status: Callable[[Any], tuple[int, str]],
) -> T:
    """Await ``call(on_progress)`` under a progress bar that ``status`` turns each report into
    (completed, info line); with ``quiet``, ``call(None)`` and no bar."""
    if quiet:
        return await call(None)
    with _progress() as progress:
        task = progress.add_task(title, total=total, info="")

        def tick(state: Any) -> None:
            completed, info = status(state)
            progress.update(task, completed=completed, info=info)

        result = await call(tick)
        # the total was an estimate (inputs before skipping, or --limit): the bar ends full
        progress.update(task, total=progress.tasks[0].completed)
        return result


def _preflight(cfg: Config, roles: dict[str, str] | Iterable[str | None], *, quiet: bool = False) -> list[str]:
    """Run the pre-flight checks (``autodata.llm.preflight``) on the endpoints a command uses.

    Returns the endpoints whose server said it is the simulator. Problems raise a UserError naming the
    config keys (exit 2); notes are printed. ``provider: simulated`` endpoints are not checked.
    """
    from autodata.llm.preflight import check
    from autodata.llm.runtime import ModelRuntime

    by_endpoint: dict[str, list[str]] = {}
    if isinstance(roles, dict):
        for role, name in roles.items():
            by_endpoint.setdefault(name, []).append(role)
    else:
        by_endpoint = {n: [] for n in roles if n}
    names = [n for n in by_endpoint if cfg.models[n].provider != "simulated"]
    if not names:
        return []

    # the solvers' temperatures go with the tiny call: a model that refuses them is caught before the run
    params: dict[str, dict[str, Any]] = {}
    for role, temp in (("weak_solver", cfg.loop.weak_temperature), ("strong_solver", cfg.loop.strong_temperature)):
        for name, played in by_endpoint.items():
            if role in played and temp is not None:
                params.setdefault(name, {})["temperature"] = temp

    async def go() -> Any:
        rt = ModelRuntime(cfg, cache=None)
        try:
            return await check(rt, names, document_tokens=cfg.documents.max_tokens, roles=by_endpoint, params=params)
        finally:
            await rt.aclose()

    report = asyncio.run(go())
    resolve_document_budget(cfg, report.context_windows(), by_endpoint)
    if not quiet:
        for note in report.notes:
            err.print(f"[yellow]pre-flight: {note}[/]", highlight=False)
        windows = report.context_windows()
        if windows:
            err.print("pre-flight: context windows " + ", ".join(f"{n} {w:,}" for n, w in windows.items()))
    if report.problems:
        raise UserError(
            f"pre-flight found problems ({report.calls} calls made; skip with --no-preflight)",
            details=report.problems,
        )
    if not quiet:
        err.print(f"[dim]pre-flight: {', '.join(names)} ok ({report.calls} calls, not counted in the run)[/]")
    return report.simulated()


def resolve_document_budget(cfg: Any, windows: dict[str, int], by_endpoint: dict[str, list[str]]) -> None:
    """Set an unset ``documents.max_tokens`` from the challenger's context window reported by the
    pre-flight (minus the prompt and its answer budget); an explicit value always wins."""
    if cfg.documents.max_tokens is not None:
        return
    from autodata.llm.preflight import DEFAULT_ANSWER_TOKENS, PROMPT_OVERHEAD_TOKENS

    for name, played in by_endpoint.items():
        if "challenger" in played and windows.get(name):
            answer = int(cfg.models[name].sampling.max_tokens or DEFAULT_ANSWER_TOKENS)
            cfg.documents.max_tokens = cfg.documents.budget(windows[name], answer, PROMPT_OVERHEAD_TOKENS)
            return


WAIT_SHOWN_S = 5.0  # waits at least this long are printed


def wait_printer() -> Callable[[str, float, str], None]:
    """The ``on_wait`` hook of every command that calls models (``run``, ``baseline``, ``optimize``,
    ``generate``): a long wait (a server's Retry-After, a backoff) is printed above the progress bar, so a
    pause of minutes is not silent."""

    def shown(endpoint: str, seconds: float, why: str) -> None:
        if seconds >= WAIT_SHOWN_S:
            err.print(f"[yellow]{endpoint}: waiting {seconds:.0f} s ({why})[/]", highlight=False)

    return shown


def _show_waits(executor: Any) -> None:
    """Print long waits (:func:`wait_printer`). ``executor``: anything with an ``on_wait`` hook (a run's
    executor, local or Ray: a Ray worker's waits reach the driver with its reports; a ``ModelRuntime``)."""
    executor.on_wait = wait_printer()


def _progress(console: Any = None) -> Progress:
    """The run's progress line: done/total, percentage, elapsed and ETA first, at fixed widths, then the
    running counts, which alone are cut (with an ellipsis) on a narrow terminal, so an 80-column one
    still shows the total, the percentage and the ETA."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(bar_width=20),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[info]}", table_column=Column(ratio=1, no_wrap=True, overflow="ellipsis")),
        console=console or err,
        transient=False,
        expand=True,
    )


def _exit_if_run_failed(summary: dict[str, Any]) -> None:
    """Exit 1 when the run was stopped, or when any document failed this session (a server error, no
    valid evidence): the run is not complete, and running the same command again retries those."""
    docs = summary["documents"]
    if summary.get("stopped") or docs["failed_this_session"]:
        raise typer.Exit(1)


def _cost_rows(summary: dict[str, Any]) -> list[tuple[str, Any]]:
    """What the examples cost to make (every call behind the finished documents, cached answers at
    their price) and what was paid, this session and in all, as separate rows."""
    made, session = summary.get("made"), summary.get("this_session")
    rows: list[tuple[str, Any]] = []
    if made is not None:
        per = summary.get("made_per_accepted_example") or {}
        rows += [
            ("model calls behind these documents", f"{made['calls']} ({made['cache_hits']} answered from the cache)"),
            ("tokens behind them (in / out)", f"{made['input_tokens']:,} / {made['output_tokens']:,}"),
            ("cost to make them (USD)", f"{made['cost_usd']:.4f}"),
            (
                "per accepted example: calls/tokens/USD",
                f"{per['calls']} / {per['tokens']:,} / {per['cost_usd']:.4f}" if per else "-",
            ),
        ]
    if session is not None:
        rows.append(
            (
                "paid this session: calls/cache hits/USD",
                f"{session['calls']} / {session['cache_hits']} / {session['cost_usd']:.4f}",
            )
        )
    rows += [
        ("paid in all sessions: calls/cache hits", f"{summary['calls']} / {summary.get('cache_hits', 0)}"),
        ("paid in all sessions (USD)", f"{summary['cost_usd']:.4f}"),
    ]
    return rows


def _print_run_summary(summary: dict[str, Any]) -> None:
    docs = summary["documents"]
    table = Table(title="run summary")
    table.add_column("what")
    table.add_column("value", justify="right")
    rows = [
        ("documents", docs["total"]),
        ("accepted", docs["accepted"]),
        ("exhausted (round budget spent)", docs["exhausted"]),
        ("failed this session (retried on resume)", docs["failed_this_session"]),
        ("already finished before this session", docs.get("finished_before_this_session") or 0),
        ("skipped", ", ".join(f"{k} {v}" for k, v in docs["skipped"].items()) or "0"),
        ("acceptance rate", f"{100 * summary['acceptance_rate']:.0f}%"),
        ("rounds", summary["rounds"]),
        *_cost_rows(summary),
        ("wall time (s)", summary["wall_s"]),
    ]
    if summary.get("cache_write_errors"):
        rows.insert(-3, ("answers the call cache could not save", summary["cache_write_errors"]))
    servers = summary.get("servers") or {}
    if servers.get("replies_without_answer"):
        text = ", ".join(f"{k} {v}" for k, v in servers["replies_without_answer"].items())
        rows.insert(-3, ("replies without an answer (attempt errors)", text))
    if servers.get("estimated_calls"):
        rows.insert(
            -3,
            (
                "calls without usage from the server (tokens estimated)",
                f"{servers['estimated_calls']} ({servers['estimated_tokens']:,} tokens)",
            ),
        )
    if servers.get("step_downs") or servers.get("schema_fallbacks"):
        rows.insert(
            -3,
            (
                "structured output: endpoints stepped down / requests sent in JSON mode",
                f"{servers.get('step_downs', 0)} / {servers.get('schema_fallbacks', 0)}",
            ),
        )
    sandbox = summary.get("sandbox")
    if sandbox:
        rows.insert(-2, (f"sandbox runs ({sandbox['kind']})", sandbox["runs"]))
        rows.insert(-2, ("sandbox seconds per accepted example", sandbox["seconds_per_accepted_example"]))
    for k, v in rows:
        table.add_row(k, str(v))
    out.print(table)
    if sandbox and sandbox.get("warning"):
        out.print(f"WARNING: {sandbox['warning']}", style="bold yellow", markup=False, highlight=False)
    if summary.get("cache_write_errors"):
        out.print(
            f"[yellow]the call cache could not save {summary['cache_write_errors']} answers "
            "(see the warnings above); a resumed or repeated run asks for them again[/]"
        )
    if summary["rejections"]:
        from autodata.glossary import rejection_words

        out.print("rejections (a round can have several):", markup=False, highlight=False)
        for code, n in summary["rejections"].items():
            out.print(f"  {n:>5}  {code}: {rejection_words(code)}", markup=False, highlight=False)
    if summary.get("flagged"):
        out.print(
            "flagged by data-set checks (left out of exports unless --include flagged): "
            + ", ".join(f"{kind} {n}" for kind, n in summary["flagged"].items()),
            markup=False,
            highlight=False,
        )
    if summary.get("recipe"):
        r = summary["recipe"]
        out.print(f"evolved recipe applied: {r.get('hash')} from {r.get('file')}", markup=False, highlight=False)
    if summary.get("stopped"):
        out.print(f"[red]{escape(summary['stopped'])}[/]", highlight=False)
    for failure in summary.get("failures", [])[:5]:
        out.print(f"failed: {failure['source']}: {failure['error']}", markup=False, highlight=False)
    if docs["failed_this_session"]:
        out.print(
            f"[red]{docs['failed_this_session']} documents failed this session (server errors or no valid answers, "
            "not verdicts on the documents): they are not stored as finished; run the same command again to "
            "retry them[/]",
            highlight=False,
        )
    if "outputs" in summary:
        o = summary["outputs"]
        out.print(
            f"wrote {o['examples']} ({o['examples_written']} example{'' if o['examples_written'] == 1 else 's'}), "
            f"{o['episodes']}, summary.json; "
            f"store {o['store']}",
            markup=False,
            highlight=False,
        )
    if summary.get("simulated_models"):
        names = ", ".join(summary["simulated_models"])
        out.print(f"[yellow]These examples come from SIMULATED models ({names}).[/]", highlight=False)
        out.print(
            "To run the same loop on real models: copy examples/openai-compatible.yaml, set the base_url "
            "and model of each endpoint, then `autodata validate` it and `autodata run` it.",
            markup=False,
        )
