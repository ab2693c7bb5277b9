"""What the command modules share: the Typer app, the consoles, common options, config loading,
progress bars and the run summary.

``autodata.cli`` and ``autodata.cli_analysis`` both register their commands on :data:`app` and
import from here; neither imports the other's helpers, so the two command modules form no circle
(``cli`` imports ``cli_analysis`` only to register its commands).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from autodata.config import Config, load_config

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
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")]


def default_config_text() -> str:
    return resources.files("autodata").joinpath("defaults/simulated.yaml").read_text(encoding="utf-8")


def _load(config: Path | None, overrides: list[str] | None) -> Config:
    from autodata.llm.runtime import check_endpoints

    cfg = load_config(config, overrides or [], default_text=default_config_text())
    check_endpoints(cfg)
    return cfg


def _simulated_banner(cfg: Config, names: Iterable[str | None]) -> None:
    """Say which of the endpoints a command uses are simulated, so no one mistakes their output."""
    simulated = sorted({n for n in names if n and cfg.models[n].provider == "simulated"})
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

        return await call(tick)


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        console=err,
        transient=False,
    )


def _exit_if_run_failed(summary: dict[str, Any]) -> None:
    """Exit 1 when the run was stopped, or when any document failed this session (a server error, no
    valid evidence): the run is not complete, and running the same command again retries those."""
    docs = summary["documents"]
    if summary.get("stopped") or docs["failed_this_session"]:
        raise typer.Exit(1)


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
        ("model calls", summary["calls"]),
        ("answers from the call cache", summary.get("cache_hits", 0)),
        ("calls per accepted example", summary["calls_per_accepted_example"]),
        ("cost (USD)", f"{summary['cost_usd']:.4f}"),
        ("wall time (s)", summary["wall_s"]),
    ]
    if summary.get("cache_write_errors"):
        rows.insert(-3, ("answers the call cache could not save", summary["cache_write_errors"]))
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
        out.print("rejections: " + ", ".join(f"{k} {v}" for k, v in summary["rejections"].items()), markup=False)
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
            f"wrote {o['examples']} ({o['examples_written']} examples), {o['episodes']}, summary.json; "
            f"store {o['store']}",
            markup=False,
            highlight=False,
        )
    if summary.get("simulated_models"):
        out.print("[yellow]These examples come from SIMULATED models.[/]")
        out.print(
            "To run the same loop on real models: copy examples/openai-compatible.yaml, set the base_url "
            "and model of each endpoint, then `autodata validate` it and `autodata run` it.",
            markup=False,
        )
