"""The ``autodata`` command line. Thin: parse flags, load config, call the library, print results.

User errors (bad config, missing files, bad flags) print a short message and exit with code 2;
tracebacks are reserved for bugs.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from autodata.cli_common import (  # noqa: F401  (re-exported: the CLI's helpers under their old names)
    ConfigArg,
    ForceOpt,
    LimitOpt,
    NoCacheOpt,
    NoPreflightOpt,
    QuietOpt,
    SetOpt,
    T,
    _cost_rows,
    _exit_if_run_failed,
    _load,
    _preflight,
    _print_run_summary,
    _progress,
    _show_waits,
    _simulated_banner,
    _with_progress,
    app,
    default_config_text,
    err,
    out,
    wait_printer,
)
from autodata.config import Config, redact_url
from autodata.errors import UserError

cache_app = typer.Typer(no_args_is_help=True, help="Inspect or clear the call cache.")
app.add_typer(cache_app, name="cache")
sandbox_app = typer.Typer(no_args_is_help=True, help="Run code in the sandbox the code profile uses.")
app.add_typer(sandbox_app, name="sandbox")


@app.command()
def validate(
    config: Annotated[Path, typer.Argument(help="YAML config to check.")],
    set_: SetOpt = None,
    check: Annotated[
        bool,
        typer.Option(
            "--check", help="Also contact each endpoint the roles use: model served, one call, schema, context."
        ),
    ] = False,
) -> None:
    """Load and check a config; report every problem with its dotted key. Exit 2 if invalid.

    Beyond the schema: the roles `run` (and `optimize`) will need, and acceptance thresholds that no
    scores can meet (checks that need no network); with --check, the endpoints too."""
    from autodata.loop.run import check_config

    cfg = _load(config, set_)
    check_config(cfg)
    for warning in _shared_model_names(cfg):
        err.print(f"[yellow]warning: {warning}[/]", highlight=False)
    if check:
        used = sorted(set(cfg.roles.values())) or sorted(cfg.models)
        simulated = _preflight(cfg, {r: n for r, n in cfg.roles.items()} if cfg.roles else used)
        _simulated_banner(cfg, used, simulated)
    table = Table(title=f"{config}: valid", show_lines=False)
    for col in ("model", "provider", "served as", "replicas", "concurrency", "rpm", "tpm", "key env"):
        table.add_column(col)
    for name, ep in cfg.models.items():
        table.add_row(
            name,
            ep.provider,
            ep.model,
            str(len(ep.base_url or [])) if ep.provider == "openai" else "-",
            str(ep.max_concurrency),
            str(ep.rpm or "-"),
            str(ep.tpm or "-"),
            ep.api_key_env or "-",
        )
    out.print(table)
    if cfg.roles:
        out.print("roles: " + ", ".join(f"{r} -> {m}" for r, m in cfg.roles.items()))
    missing = [f"{n}: ${ep.api_key_env}" for n, ep in cfg.models.items() if ep.api_key_env and ep.api_key() is None]
    if missing:
        err.print("[yellow]note: these API key variables are not set in this shell: " + ", ".join(missing) + "[/]")


def _shared_model_names(cfg: Config) -> list[str]:
    """Two endpoints that declare the same ``model`` on different servers (llama-server and vLLM
    ``--served-model-name`` both say ``local`` or ``default``): their answers are kept apart (the cache
    key includes the server), but the names suggest a copy-paste slip."""
    seen: dict[str, list[tuple[str, tuple[str, ...]]]] = {}
    for name, ep in cfg.models.items():
        if ep.provider == "openai":
            seen.setdefault(ep.model, []).append((name, tuple(sorted(ep.base_url or ["(default)"]))))
    out = []
    for model, eps in seen.items():
        if len({urls for _, urls in eps}) > 1:
            out.append(
                f"models {', '.join(n for n, _ in eps)} all declare model {model!r} on different servers; "
                "check each models.NAME.model is the name its server serves"
            )
    return out


def _count_lines(path: Path) -> int | None:
    try:
        with path.open("rb") as fh:
            return sum(1 for line in fh if line.strip())
    except OSError:
        return None


@app.command()
def generate(
    config: ConfigArg = None,
    input: Annotated[
        Path,
        typer.Option("--input", "-i", help="JSONL: one {prompt|messages, id?, response_format?, params?} per line."),
    ] = Path("prompts.jsonl"),
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Output directory.")] = Path("runs/generate"),
    model: Annotated[str | None, typer.Option("--model", "-m", help="Endpoint name from the config.")] = None,
    n: Annotated[int | None, typer.Option("--n", min=1, help="Samples per prompt (each cached apart).")] = None,
    no_cache: NoCacheOpt = False,
    quiet: QuietOpt = False,
    set_: SetOpt = None,
) -> None:
    """Run every prompt of a JSONL file through a model; completions stream to OUT/completions.jsonl."""
    from autodata.batch import run_batch
    from autodata.llm.runtime import ModelRuntime

    cfg = _load(config, set_)
    if config is None:
        err.print("[dim]no config given: using the embedded offline default (simulated models)[/]")
    name = model or cfg.generate.model
    if name is None:
        if len(cfg.models) != 1:
            raise UserError(
                f"which model? pass --model, one of: {', '.join(sorted(cfg.models))} "
                "(or set generate.model in the config)"
            )
        name = next(iter(cfg.models))
    cfg.endpoint_for(name)
    samples = n or cfg.generate.n
    runtime = ModelRuntime.from_config(cfg, use_cache=not no_cache)
    runtime.on_wait = wait_printer()
    _simulated_banner(cfg, [name])
    total = _count_lines(input)
    if total is not None:
        total *= samples

    async def go() -> dict[str, Any]:
        try:
            return await _with_progress(
                f"generate [{name}]",
                total,
                quiet,
                lambda tick: run_batch(runtime, input, out_dir, model=name, n=samples, on_progress=tick),
                lambda stats: (stats.requests + stats.bad_lines * samples, _usage_line(runtime, stats)),
            )
        finally:
            await runtime.aclose()

    summary = asyncio.run(go())
    _print_summary(summary)
    if summary["requests"] and summary["completed"] == 0:
        raise typer.Exit(1)


def _usage_line(runtime: Any, stats: Any) -> str:
    t = runtime.meter.totals
    return (
        f"calls {t.calls} cached {t.cache_hits} failed {stats.failed} retries {t.retries} | "
        f"tok {t.input_tokens:,}/{t.output_tokens:,} | ${t.cost_usd:.4f}"
    )


def _print_summary(summary: dict[str, Any]) -> None:
    total = summary["usage"]["total"]
    table = Table(title=f"generate -> {summary['outputs']['completions']}")
    table.add_column("what")
    table.add_column("value", justify="right")
    rows = [
        ("prompt lines", summary["lines"]),
        ("bad lines (see failures.jsonl)", summary["bad_lines"]),
        ("requests", summary["requests"]),
        ("completed", summary["completed"]),
        ("failed (see failures.jsonl)", summary["failed"]),
        ("served from cache", summary["from_cache"]),
        ("calls made", total["calls"]),
        ("retries", total["retries"]),
        ("structured answers repaired", summary["repaired_outputs"]),
        ("invalid answers re-asked", summary["invalid_answers_reasked"]),
        ("tokens in / out", f"{total['input_tokens']:,} / {total['output_tokens']:,}"),
        ("cost (USD)", f"{total['cost_usd']:.4f}"),
        ("saved by cache (USD)", f"{total['saved_usd']:.4f}"),
        ("wall time (s)", summary["wall_s"]),
    ]
    for k, v in rows:
        table.add_row(k, str(v))
    out.print(table)
    outputs = summary["outputs"]
    out.print(
        f"wrote {outputs['completions']} ({summary['completed']} records), {outputs['failures']} "
        f"({summary['failed'] + summary['bad_lines']} records) and the summary.json beside them",
        markup=False,
        highlight=False,
    )
    if summary["usage"]["total"]["calls"] and summary.get("cache", {}).get("enabled"):
        from autodata.llm.replies import NO_ANSWER

        total = summary["usage"]["total"]
        again = sum(n for code, n in (total.get("problems") or {}).items() if code in NO_ANSWER)
        again += summary.get("forgotten_answers", 0)
        if again:  # replies without an answer are never cached (llm.replies.NO_ANSWER): those are asked again
            out.print(
                f"run the same command again: every answer now comes from the call cache; the {again} replies "
                "without an answer are asked again"
            )
        else:
            out.print("run the same command again: every answer now comes from the call cache (zero calls)")
    if summary.get("simulated"):
        out.print("[yellow]These completions come from SIMULATED models.[/]")


@app.command()
def run(
    config: ConfigArg = None,
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Run directory (created; reused to resume).")] = Path(
        "runs/run"
    ),
    limit: LimitOpt = None,
    force_new_recipe: ForceOpt = False,
    no_cache: NoCacheOpt = False,
    quiet: QuietOpt = False,
    recipe: Annotated[
        Path | None, typer.Option("--recipe", help="Run with an evolved recipe (e.g. best_recipe.yaml of optimize).")
    ] = None,
    executor: Annotated[
        str | None, typer.Option("--executor", help="local (this process) or ray (a pool of Ray workers).")
    ] = None,
    ray_address: Annotated[
        str | None, typer.Option("--ray-address", help="Ray cluster to join (e.g. auto); implies --executor ray.")
    ] = None,
    set_: SetOpt = None,
    no_preflight: NoPreflightOpt = False,
) -> None:
    """Turn documents into accepted, discriminative examples (the inner loop). Re-run to resume."""
    if ray_address:
        executor = executor or "ray"
        set_ = [*(set_ or []), f"executor.address={ray_address}"]
    if executor:
        set_ = [*(set_ or []), f"executor.kind={executor}"]
    from autodata.loop.run import run as run_loop
    from autodata.loop.run import run_settings
    from autodata.meta.recipe import frozen_hash

    cfg = _load(config, set_)
    applied = None
    if recipe is not None:
        from autodata.meta.recipe import apply_recipe, load_recipe

        evolved = load_recipe(recipe)
        cfg = apply_recipe(cfg, evolved)
        applied = {"hash": evolved.hash, "file": str(recipe.resolve())}
        err.print(f"applying evolved recipe {evolved.hash} from {recipe}", markup=False, highlight=False)
    settings = run_settings(cfg)  # the run's roles, computed once: everything below reads them from here
    roles = settings.endpoints.roles()
    said_simulated = [] if no_preflight else _preflight(cfg, roles, quiet=quiet)
    _simulated_banner(cfg, roles.values(), said_simulated)

    from autodata.documents.sources import count_inputs
    from autodata.executors import make_executor

    inputs = None if quiet else count_inputs(cfg.documents)
    total = min(limit, inputs) if limit and inputs is not None else (limit or inputs)

    async def go() -> dict[str, Any]:
        ex = make_executor(cfg, use_cache=not no_cache, roles=roles)
        _show_waits(ex)
        return await _with_progress(
            "run",
            total,
            quiet,
            lambda tick: run_loop(
                cfg,
                out_dir,
                limit=limit,
                force_new_recipe=force_new_recipe,
                use_cache=not no_cache,
                on_progress=tick,
                executor=ex,
                settings=settings,
                meta={"recipe": applied, "frozen_hash": frozen_hash(cfg, roles)},
            ),
            lambda p: (
                # inputs skipped or finished before count towards the total too (without --limit they are in it)
                p.documents_done + p.failed + p.already_done + (0 if limit else p.skipped),
                f"accepted {p.accepted} ({100 * p.acceptance_rate:.0f}%) exhausted {p.exhausted} "
                f"failed {p.failed} | rounds {p.rounds} | calls {p.calls} tok {p.tokens:,} ${p.cost_usd:.4f}",
            ),
        )

    summary = asyncio.run(go())
    _print_run_summary(summary)
    _exit_if_run_failed(summary)


@app.command()
def optimize(
    config: ConfigArg = None,
    out_dir: Annotated[
        Path, typer.Option("--out", "-o", help="Optimize directory (created; reused to resume).")
    ] = Path("runs/optimize"),
    iterations: Annotated[
        int | None, typer.Option("--iterations", min=1, help="Overrides optimize.iterations.")
    ] = None,
    no_cache: NoCacheOpt = False,
    quiet: QuietOpt = False,
    set_: SetOpt = None,
    no_preflight: NoPreflightOpt = False,
) -> None:
    """Evolve the harness's editable instructions (the outer loop). Re-run to resume."""
    from autodata.loop.run import settings_from
    from autodata.meta.optimizer import optimize as run_optimize

    cfg = _load(config, [*(set_ or []), *([f"optimize.iterations={iterations}"] if iterations else [])])
    settings = settings_from(cfg)  # the run's roles, computed once: pre-flight and the optimizer read them here
    used = {*settings.endpoints.names(), *(cfg.roles.get(r) for r in ("analyzer", "implementer") if cfg.roles.get(r))}
    said_simulated = [] if no_preflight else _preflight(cfg, used, quiet=quiet)
    _simulated_banner(cfg, used, said_simulated)

    async def go() -> dict[str, Any]:
        return await _with_progress(
            "optimize",
            cfg.optimize.iterations,
            quiet,
            lambda tick: run_optimize(
                cfg, out_dir, use_cache=not no_cache, on_progress=tick, on_wait=wait_printer(), settings=settings
            ),
            lambda s: (
                s["iterations_run"],
                f"kept {s['iterations_accepted']} | best val {100 * s['best']['val_pass_rate']:.0f}% "
                f"(baseline {100 * s['baseline']['val_pass_rate']:.0f}%) | blocked {s['hacking_attempts_blocked']}",
            ),
        )

    summary = asyncio.run(go())
    _print_optimize_summary(summary, out_dir)
    if summary.get("stopped"):
        raise typer.Exit(1)


@app.command()
def frozen(
    config: ConfigArg = None,
    files: Annotated[
        bool, typer.Option("--files", help="Also list every file (with its SHA-256) and setting the hash covers.")
    ] = False,
    set_: SetOpt = None,
) -> None:
    """Print the frozen hash: what the outer loop can never touch (the judging package, the loop code that
    picks a scorer or applies the predicate, the model runtime and sandbox they call, and the frozen
    settings). The optimizer stops if it changes during a run."""
    from autodata.meta.recipe import frozen_hash, frozen_parts

    cfg = _load(config, set_)
    typer.echo(frozen_hash(cfg))
    if not files:
        return
    parts = frozen_parts(cfg)
    typer.echo(f"files ({len(parts['files'])}, relative to the autodata package):")
    for name, digest in parts["files"].items():
        typer.echo(f"  {digest[:16]}  {name}")
    typer.echo("settings:")
    for key, value in _flatten(parts["settings"]):
        typer.echo(f"  {key} = {json.dumps(value)}")


def _flatten(value: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """Nested mappings as (dotted key, leaf value) pairs, keys in order."""
    if isinstance(value, dict) and value:
        return [pair for k, v in value.items() for pair in _flatten(v, f"{prefix}.{k}" if prefix else str(k))]
    return [(prefix, value)]


def _print_optimize_summary(s: dict[str, Any], out_dir: Path) -> None:
    table = Table(title="optimize", show_header=False)
    b, best = s["baseline"], s["best"]

    def pct(x: Any) -> str:
        return "-" if x is None else f"{100 * x:.1f}%"

    table.add_row("baseline validation / test", f"{pct(b['val_pass_rate'])} / {pct(b.get('test_pass_rate'))}")
    table.add_row("best validation / test", f"{pct(best['val_pass_rate'])} / {pct(best.get('test_pass_rate'))}")
    table.add_row("iterations run / kept", f"{s['iterations_run']} / {s['iterations_accepted']}")
    table.add_row("hacking attempts blocked", str(s["hacking_attempts_blocked"]))
    table.add_row("canary checks", str(len(s["canary"]["checks"])))
    table.add_row("tokens / cost (USD)", f"{s['tokens']:,} / {s['cost_usd']:.4f}")
    out.print(table)
    if s.get("stopped"):
        err.print(f"stopped: {s['stopped']}", markup=False, highlight=False)
    out.print(
        f"wrote {out_dir}/population.jsonl, history.md, best_recipe.yaml, summary.json, pass_rate.png; "
        f"use the best recipe with `autodata run CONFIG --recipe {out_dir}/best_recipe.yaml`",
        markup=False,
        highlight=False,
    )


@app.command()
def status(
    run_dir: Annotated[Path, typer.Argument(help="A directory written by `autodata run` or `autodata optimize`.")],
) -> None:
    """Print the summary of a run or an optimization (finished or still going)."""
    from autodata.loop.run import summarize
    from autodata.store.run_store import RunStore

    if (run_dir / "state.json").exists() and (run_dir / "population.jsonl").exists():
        summary_file = run_dir / "summary.json"
        if summary_file.exists():
            _print_optimize_summary(json.loads(summary_file.read_text()), run_dir)
        else:
            out.print(f"{run_dir}: optimization started; no iteration has finished yet")
        return
    store = RunStore.open_existing(run_dir)
    try:
        _print_run_summary(summarize(store))
    finally:
        store.close()


RunDirArg = Annotated[Path, typer.Argument(help="A directory written by `autodata run`.")]


@app.command()
def review(
    run_dir: RunDirArg,
    host: Annotated[str, typer.Option(help="Interface to bind; anything but loopback needs the token.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port; 0 picks a free one and prints it.")] = 0,
    token: Annotated[
        str | None, typer.Option(help="Access token (generated and printed when binding beyond loopback).")
    ] = None,
    reviewer: Annotated[
        str | None, typer.Option(help="Name recorded with each decision (default: your login name).")
    ] = None,
) -> None:
    """Review a run's examples in the browser: approve, reject with a reason, edit; saved in run.db."""
    import getpass
    import ipaddress
    import secrets

    from autodata.review.app import LOOPBACK_HOSTS, ReviewSettings, create_app
    from autodata.sim.server import bind_socket, serve
    from autodata.store.run_store import RunStore

    store = RunStore.open_existing(run_dir)
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback and not token:
        token = secrets.token_urlsafe(24)
    if token is not None and len(token) < 16:
        raise UserError("--token must be at least 16 characters")
    try:
        sock = bind_socket(host, port)
    except OSError as exc:
        raise UserError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    actual = sock.getsockname()[1]
    if not reviewer:
        try:
            reviewer = getpass.getuser()
        except (KeyError, OSError):  # no login name (some containers)
            reviewer = "reviewer"
    settings = ReviewSettings(
        reviewer=reviewer,
        token=token,
        allowed_hosts=(*LOOPBACK_HOSTS, host) if loopback else (),
    )
    app_ = create_app(store, settings)
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    url = f"http://{shown}:{actual}/" + (f"?token={token}" if token else "")
    out.print(f"review: {run_dir} on {url}", markup=False, highlight=False)
    out.print("keys: j/k move, a approve, r reject, e edit, n note; Ctrl-C stops", markup=False, highlight=False)
    sys.stdout.flush()
    try:
        asyncio.run(serve(app_, sock))
    except KeyboardInterrupt:
        pass
    finally:
        store.close()


@app.command()
def report(
    run_dir: RunDirArg,
    out_file: Annotated[
        Path | None, typer.Option("--out", "-o", help="HTML file to write (default: DIR/report.html).")
    ] = None,
) -> None:
    """Write one self-contained HTML report (figures embedded) of a run; it opens offline."""
    import time

    from autodata.report.build import write_report

    started = time.perf_counter()
    path, rep = write_report(run_dir, out_file)
    out.print(
        f"wrote {path} ({len(rep.figures)} figures, {path.stat().st_size / 1e3:.0f} kB) "
        f"in {time.perf_counter() - started:.2f} s",
        markup=False,
        highlight=False,
    )


@app.command()
def export(
    run_dir: RunDirArg,
    fmt: Annotated[str, typer.Option("--format", "-f", help="jsonl, parquet, hf, rl or sft.")] = "jsonl",
    out_path: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="File (a folder for hf or with --split); default DIR/export/..."),
    ] = None,
    include: Annotated[
        list[str] | None,
        typer.Option(
            help="Review rule: auto (approved if anyone reviewed, else accepted), approved, accepted or "
            "unrejected; add flagged (contamination/dedup flags) and/or failed (not meeting acceptance), "
            "or all; add trajectory (every round as JSON) and/or reasoning (the solvers' reasoning) as columns. "
            "Repeatable or comma-separated."
        ),
    ] = None,
    split: Annotated[
        str | None,
        typer.Option(help="Cut into splits by document, e.g. train=0.9,validation=0.05,test=0.05 (seeded)."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of --split.")] = 0,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing output (never the run store).")] = False,
    name: Annotated[str | None, typer.Option(help="Dataset name on the card (default: dataset.name).")] = None,
    license: Annotated[str | None, typer.Option(help="License on the card (default: dataset.license).")] = None,
    push_to_hub: Annotated[
        str | None, typer.Option("--push-to-hub", help="With --format hf: upload to this Hub dataset repo.")
    ] = None,
    private: Annotated[bool, typer.Option(help="With --push-to-hub: create the repo private.")] = False,
) -> None:
    """Export a run's examples for training or evaluation: what passed, reviewer decisions and edits
    honoured, flagged and failing examples left out unless asked for."""
    from autodata.export.write import export as export_run

    res = export_run(
        run_dir,
        fmt,
        out_path,
        include=include or ["auto"],
        split=split,
        seed=seed,
        force=force,
        name=name,
        license=license,
        push_to_hub=push_to_hub,
        private=private,
    )
    out.print(res.message(), markup=False, highlight=False)
    if push_to_hub:
        out.print(f"pushed to {push_to_hub}", markup=False, highlight=False)


@app.command("serve-sim")
def serve_sim(
    host: Annotated[str, typer.Option(help="Interface to bind (loopback by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port; 0 picks a free one and prints it.")] = 8000,
    latency_ms: Annotated[
        float, typer.Option("--latency-ms", min=0, help="Time each answer takes, counted from the request's arrival.")
    ] = 0.0,
    seed: Annotated[int, typer.Option(help="Global seed of the simulated ladder.")] = 0,
    fault_rate: Annotated[
        float, typer.Option("--fault-rate", min=0, max=1, help="Share of structured answers with defects.")
    ] = 0.04,
    gpu_model: Annotated[
        str | None,
        typer.Option(
            "--gpu-model",
            help="Answer at the pace of a GPU server: a preset (llama-8b-1xh100, qwen-32b-2xh100, "
            "llama-70b-8xh100, tiny); replaces --latency-ms. Metrics on /metrics.",
        ),
    ] = None,
    gpu_config: Annotated[
        Path | None,
        typer.Option("--gpu-config", help="A YAML file of GPU model fields (base: PRESET fills the rest)."),
    ] = None,
    time_scale: Annotated[
        float, typer.Option("--time-scale", min=1e-6, help="Wall seconds per simulated second (0.01: 100x faster).")
    ] = 1.0,
) -> None:
    """Serve the simulated model ladder over an OpenAI-compatible HTTP API (/v1/chat/completions)."""
    from autodata.sim.gpu import GpuEngine, load_spec
    from autodata.sim.ladder import LADDER, SimulatedLadder
    from autodata.sim.server import bind_socket, create_app, serve

    engine = None
    if gpu_model is not None or gpu_config is not None:
        engine = GpuEngine(load_spec(gpu_model, gpu_config), time_scale=time_scale)
    try:
        sock = bind_socket(host, port)
    except OSError as exc:
        raise UserError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    actual = sock.getsockname()[1]
    app_ = create_app(SimulatedLadder(global_seed=seed, fault_rate=fault_rate), latency_ms=latency_ms, engine=engine)
    pace = (
        f"GPU model {engine.spec.name}, time scale {time_scale:g}"
        if engine is not None
        else f"latency {latency_ms:g} ms"
    )
    out.print(
        f"serve-sim: SIMULATED models on http://{host}:{actual}/v1 ({pace}, seed {seed}, fault rate {fault_rate:g})"
    )
    out.print(f"models: {', '.join(LADDER)}")
    sys.stdout.flush()
    try:
        import uvloop  # shipped with uvicorn[standard]; a cheaper loop leaves more CPU to clients

        run = uvloop.run
    except ImportError:
        run = asyncio.run
    try:
        run(serve(app_, sock))
    except KeyboardInterrupt:
        pass


@cache_app.command("stats")
def cache_stats(config: ConfigArg = None, set_: SetOpt = None) -> None:
    """Show where the cache is, how many answers it holds, and for which models."""
    from autodata.llm.cache import CallCache

    cfg = _load(config, set_)
    path = cfg.cache.resolved_path()
    if not path.exists():
        out.print(f"cache {path}: empty (no file yet)")
        return
    cache = CallCache(path)
    try:
        stats = cache.stats()
    finally:
        cache.close()
    out.print(f"cache {stats['path']}: {stats['entries']} answers, {stats['bytes'] / 1e6:.1f} MB")
    for model, row in stats["models"].items():
        out.print(f"  {model}: {row['entries']}")


@cache_app.command("clear")
def cache_clear(
    config: ConfigArg = None,
    model: Annotated[str | None, typer.Option(help="Only answers of this served model name.")] = None,
    older_than_days: Annotated[float | None, typer.Option("--older-than-days", min=0)] = None,
    set_: SetOpt = None,
) -> None:
    """Delete cached answers (all, or by model / age)."""
    from autodata.llm.cache import CallCache

    cfg = _load(config, set_)
    path = cfg.cache.resolved_path()
    if not path.exists():
        out.print(f"cache {path}: nothing to clear")
        return
    cache = CallCache(path)
    try:
        removed = cache.clear(model=model, older_than_s=older_than_days * 86400 if older_than_days else None)
    finally:
        cache.close()
    out.print(f"cache {path}: removed {removed} answers")


@app.command()
def models(
    config: ConfigArg = None, set_: SetOpt = None, as_json: Annotated[bool, typer.Option("--json")] = False
) -> None:
    """List the configured endpoints (and the simulated ladder when it is used)."""
    cfg = _load(config, set_)
    rows = {n: {k: v for k, v in ep.items() if v is not None} for n, ep in cfg.redacted_dump()["models"].items()}
    if as_json:
        out.print_json(json.dumps(rows))
        return
    for name, ep in cfg.models.items():
        where = ", ".join(redact_url(u) for u in ep.base_url or []) if ep.provider == "openai" else "in-process"
        out.print(f"{name}: {ep.provider} {ep.model} @ {where}")


from autodata import cli_analysis as _cli_analysis  # noqa: E402, F401  (registers baseline, compare, dedup, ...)


@sandbox_app.command("run")
def sandbox_run(
    solution: Annotated[Path, typer.Argument(help="Python file: importable as module `solution` by the tests.")],
    tests: Annotated[
        Path, typer.Option("--tests", help="Test file: pytest-style test_* functions, or top-level asserts.")
    ],
    config: Annotated[
        Path | None, typer.Option("--config", help="Take the sandbox section (kind, limits) from this config.")
    ] = None,
    set_: SetOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as one JSON object.")] = False,
) -> None:
    """Run one solution against one test file; print passed/total, failures, stop reason and resources.

    Exit code 0 when every test passed, 1 when some failed or a limit stopped the run, 2 for a
    usage error or a sandbox that cannot run here, 3 when the sandbox itself failed.
    """
    from autodata.config import SandboxConfig
    from autodata.sandbox import SandboxUnavailable, executor_from_config

    section = _load(config, set_).sandbox if config is not None or set_ else SandboxConfig()
    texts = []
    for path in (solution, tests):
        try:
            texts.append(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            raise UserError(f"cannot read {path}: {exc}") from None
    executor = executor_from_config(section)
    try:
        result = executor.run(texts[0], texts[1])
    except SandboxUnavailable as exc:
        raise UserError(str(exc)) from None
    if as_json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        _print_sandbox_result(result)
    raise typer.Exit(3 if result.infra_error else 0 if result.all_passed else 1)


def _print_sandbox_result(r: Any) -> None:
    from autodata.sandbox import STOP_REASONS

    def say(text: str) -> None:
        out.print(text, markup=False, highlight=False)

    say(f"sandbox: {r.isolation}")
    if r.infra_error:
        say(f"sandbox error (not the solution's fault): {r.infra_error}")
        return
    say(f"passed {r.passed}/{r.total}" + (f" ({r.collect_error})" if r.collect_error else ""))
    for f in r.failures:
        say(f"  FAIL {f.test}: {f.error}")
    if r.stop_reason:
        say(f"stopped: {r.stop_reason} ({STOP_REASONS.get(r.stop_reason, r.stop_reason)}): {r.stop_detail}")
    res = r.resources
    parts = [
        f"{k.replace('_', ' ')} {res[k]}"
        for k in ("cpu_seconds", "wall_seconds", "host_seconds", "max_rss_mb", "peak_processes", "output_bytes")
        if k in res
    ]
    say("resources: " + (", ".join(parts) or "not reported"))


def main() -> None:
    try:
        app()
    except UserError as exc:
        # plain text: no wrapping, and no chance that a value in the message is read as markup
        sys.stderr.write(f"error: {exc.render()}\n")
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err.print("[yellow]interrupted[/]")
        sys.exit(130)


if __name__ == "__main__":
    main()
