"""``autodata run``: documents in, accepted examples with their whole trajectories out, resumable.

Documents stream from the sources; a bounded number of episodes run at once; each finished
episode is written to the run store in one transaction. The output files (``examples.jsonl``,
``episodes.jsonl``, ``summary.json``) are written from the store at the end, so a resumed run's
outputs cover every session, in document order.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autodata.config import ANSWER_FIELDS, Config
from autodata.documents import Document, Skipped, check_inputs, config_documents
from autodata.judging.templates import template_source as judging_template_source
from autodata.llm.runtime import ModelRuntime, check_api_keys
from autodata.loop.document import (  # noqa: F401  (re-exported: the driver's public names)
    DocumentJob,
    DocumentResult,
    RecordFn,
    accepted_example,
    example_record,
    process_document,
)
from autodata.loop.episode import (  # noqa: F401  (re-exported for callers that read a config's run)
    EpisodeSettings,
    run_preset,
    run_roles,
    sandbox_for,
)
from autodata.loop.executor import Executor, LocalExecutor
from autodata.loop.profile import profile
from autodata.prompts import template_source
from autodata.store.files import atomic_jsonl, atomic_text
from autodata.store.lock import DirLock
from autodata.store.run_store import RunStore

CALL_FLUSH_S = 0.5  # how often the calls of documents still in flight are written to the call log
# Errors that will fail every document the same way: stop scheduling new ones. ``quota``: the provider
# refuses for billing reasons (429 insufficient_quota, 402); ``unsupported_param``: the model refuses a
# request field (the message names the config key that omits it).
STOP_KINDS = frozenset({"auth", "not_found", "quota", "unsupported_param"})
RECIPE_TEMPLATES = (
    "challenger.j2",
    "challenger_short.j2",
    "challenger_code.j2",
    "quality_verifier.j2",
    "orchestrator.j2",
    "structured_instructions.j2",
    "structured_repair.j2",
)
# in autodata/judging/templates
JUDGING_TEMPLATES = ("solver.j2", "solver_short.j2", "solver_code.j2", "judge.j2", "loop_judge.j2")
WEAKER_SANDBOX_WARNING = (
    "generated code ran WITHOUT filesystem or network isolation (sandbox.kind: subprocess, rlimits only)"
)


settings_from = EpisodeSettings.from_config  # the name callers know


def recipe_hash(cfg: Config, roles: dict[str, str] | None = None) -> str:
    """What decides the run's results: prompts, loop settings, models per role, seed, budget.
    ``roles``: the run's roles when already computed (``EpisodeSettings.endpoints.roles()``)."""
    roles = roles if roles is not None else run_roles(cfg)
    payload = {
        "templates": {
            **{name: template_source(name) for name in RECIPE_TEMPLATES},
            **{name: judging_template_source(name) for name in JUDGING_TEMPLATES},
        },
        "loop": cfg.loop.model_dump(mode="json", exclude={"concurrency"}),
        "models": {
            role: cfg.models[name].model_dump(mode="json", include=ANSWER_FIELDS) for role, name in roles.items()
        },
        "seed": cfg.seed,
        "documents": cfg.documents.model_dump(mode="json"),
    }
    if profile(cfg.loop.profile).scoring.needs_sandbox:  # where and under which limits code runs decides scores
        payload["sandbox"] = cfg.sandbox.model_dump(mode="json", include={"kind", "limits"})
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass(slots=True)
class RunProgress:
    """Live counters for progress bars."""

    documents_done: int = 0
    already_done: int = 0
    accepted: int = 0
    exhausted: int = 0
    skipped: int = 0
    failed: int = 0
    rounds: int = 0
    calls: int = 0
    tokens: int = 0
    cost_usd: float = 0.0
    failures: list[dict[str, str]] = field(default_factory=list)
    stopped: str | None = None  # set when an error makes every further document pointless

    @property
    def acceptance_rate(self) -> float:
        finished = self.accepted + self.exhausted
        return self.accepted / finished if finished else 0.0


ProgressFn = Callable[[RunProgress], None]


async def run(
    cfg: Config,
    out_dir: Path,
    *,
    limit: int | None = None,
    force_new_recipe: bool = False,
    use_cache: bool = True,
    on_progress: ProgressFn | None = None,
    runtime: ModelRuntime | None = None,
    settings: EpisodeSettings | None = None,
    record: RecordFn = accepted_example,
    recipe: str | None = None,
    executor: Executor | None = None,
) -> dict[str, Any]:
    """``settings``, ``record`` and ``recipe`` let the baselines reuse this driver with their own proposer,
    their own choice of examples to keep and their own recipe hash; the defaults are the inner loop.

    Episodes run on an executor (``executor.kind``: this process, or a pool of Ray workers); this
    coroutine stays the single writer of the run store either way."""
    if not cfg.documents.paths:
        from autodata.errors import ConfigError

        raise ConfigError(
            "`autodata run` needs documents", details=["documents.paths: give folders, files, globs or hf:// datasets"]
        )
    settings = settings or settings_from(cfg)  # the run's roles, computed once
    used = sorted(set(settings.endpoints.roles().values()))
    check_api_keys(cfg, used)  # before anything starts: a missing key is a user error
    rhash = recipe or recipe_hash(cfg, settings.endpoints.roles())
    check_inputs(cfg.documents.paths)  # a typo in a path fails before the run directory is touched
    with DirLock(out_dir, "run"):  # one writer per run directory; a killed holder's lock is released by the OS
        return await _run_locked(
            cfg,
            out_dir,
            limit=limit,
            force_new_recipe=force_new_recipe,
            use_cache=use_cache,
            on_progress=on_progress,
            runtime=runtime,
            settings=settings,
            record=record,
            rhash=rhash,
            executor=executor,
        )


async def _run_locked(
    cfg: Config,
    out_dir: Path,
    *,
    limit: int | None,
    force_new_recipe: bool,
    use_cache: bool,
    on_progress: ProgressFn | None,
    runtime: ModelRuntime | None,
    settings: EpisodeSettings,
    record: RecordFn,
    rhash: str,
    executor: Executor | None,
) -> dict[str, Any]:
    store = RunStore(out_dir)
    store.check_recipe(rhash, force=force_new_recipe)
    store.set_meta("config", cfg.redacted_dump())
    store.begin_session()
    finished = store.finished_ids()
    progress = RunProgress()
    tasks: set[asyncio.Task[None]] = set()
    job = DocumentJob(cfg, settings, record, rhash)
    if executor is None:
        if cfg.executor.kind != "local":
            raise ValueError("executor.kind is not local: build the executor with autodata.executors.make_executor")
        executor = LocalExecutor(cfg, runtime=runtime, use_cache=use_cache)
    await executor.start(job)
    cap = documents_in_flight(cfg, settings)
    room = getattr(executor, "has_room", None) if cfg.loop.concurrency == "auto" else None
    changed = asyncio.Event()
    if hasattr(executor, "on_call"):
        executor.on_call = changed.set

    async def flush_calls() -> None:
        """The call log is written as calls come back, not only with their episode: what a session
        killed mid-way paid for is still counted (``summarize`` reads usage from the log alone)."""
        while True:
            await asyncio.sleep(CALL_FLUSH_S)
            store.record_calls(executor.leftover_calls())

    flusher = asyncio.create_task(flush_calls())

    async def one(doc: Document, seq: int) -> None:
        try:
            res = await executor.process(doc)
            if res.failure is not None:
                progress.failed += 1
                progress.failures.append(res.failure)
                kind = res.failure.get("kind")
                if kind in STOP_KINDS and progress.stopped is None:
                    why = res.failure["error"]
                    progress.stopped = f"stopped: {why} (fix the config; finished documents are kept, rerun to resume)"
                if res.calls:
                    store.record_calls(res.calls)
                return
            assert res.status is not None and res.trajectory is not None
            store.record_episode(
                doc_id=doc.id,
                seq=seq,
                source=doc.source,
                title=doc.title,
                status=res.status,
                episode=res.trajectory,
                example=res.example,
                calls=res.calls,
                text=res.text,
            )
            progress.documents_done += 1
            progress.rounds += res.rounds
            if res.status == "accepted":
                progress.accepted += 1
            else:
                progress.exhausted += 1
        finally:
            changed.set()
            totals = executor.totals()
            progress.calls, progress.cost_usd = totals.calls, totals.cost_usd
            progress.tokens = totals.input_tokens + totals.output_tokens
            if on_progress:
                on_progress(progress)

    try:
        seq = 0
        for item in config_documents(cfg.documents):
            if isinstance(item, Skipped):
                store.record_skipped(item.source, item.reason, item.detail)
                progress.skipped += 1
                continue
            if limit is not None and seq >= limit:
                break
            if progress.stopped:
                break
            seq += 1
            if item.id in finished:
                progress.already_done += 1
                continue
            # admission: below the cap, and (auto) while some endpoint has a free slot; a new document's
            # first call reaches its endpoint's window before the next check (``sleep(0)`` lets it run)
            while len(tasks) >= cap or (room is not None and tasks and not room()):
                changed.clear()
                await changed.wait()
            task = asyncio.create_task(one(item, seq))
            tasks.add(task)
            task.add_done_callback(lambda t: (tasks.discard(t), changed.set()))
            await asyncio.sleep(0)
        if tasks:
            await asyncio.gather(*tasks)
    finally:
        flusher.cancel()
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        try:
            store.record_calls(executor.leftover_calls())
        finally:  # the executor's clients, cache and workers are released whatever happened above
            usage = await executor.close()
        store.end_session(progress.documents_done, usage)
    summary = write_outputs(
        store,
        out_dir,
        progress=progress,
        simulated=sorted({n for n in settings.endpoints.roles().values() if cfg.models[n].provider == "simulated"}),
    )
    store.close()
    return summary


MAX_AUTO_IN_FLIGHT = 4096


def documents_in_flight(cfg: Config, settings: EpisodeSettings | None = None) -> int:
    """The most documents in flight: ``loop.concurrency`` when it is a number; for ``auto``, twice the
    sum of the run's endpoints' ``max_concurrency`` (between 8 and 4096), enough for every endpoint to
    stay full while documents wait between steps, and a bound on memory (admission by budget usually
    stops well below it)."""
    if cfg.loop.concurrency != "auto":
        return int(cfg.loop.concurrency)
    names = set((settings.endpoints.roles() if settings is not None else run_roles(cfg)).values())
    total = sum(cfg.models[n].max_concurrency for n in names if n in cfg.models)
    return max(8, min(MAX_AUTO_IN_FLIGHT, 2 * total))


def summarize(
    store: RunStore, *, progress: RunProgress | None = None, simulated: list[str] | None = None
) -> dict[str, Any]:
    counts = store.status_counts()
    skipped = store.skipped()
    rejections: Counter[str] = Counter()
    rounds = 0
    for ep in store.episodes():
        for r in ep["rounds"]:
            rounds += 1
            decision = r.get("decision")
            if decision and not decision["accepted"]:
                rejections.update(reason["code"] for reason in decision["reasons"])
            if r.get("error"):
                rejections["error:" + r["error"].split(":", 1)[0]] += 1
    # usage from the call log, every session's calls including those of sessions killed mid-way: never
    # from what a session reported about itself (a killed one reports nothing)
    by_role = store.call_totals()
    total_wall = 0.0
    cache_write_errors = 0
    sessions = store.sessions()
    for session in sessions:
        usage = session.get("usage") or {}
        cache_write_errors += int(usage.get("cache_write_errors", 0))
        if session.get("ended"):
            total_wall += session["ended"] - session["started"]
    accepted = counts.get("accepted", 0)
    calls = sum(int(v["calls"]) for v in by_role.values())
    cache_hits = sum(int(v["cache_hits"]) for v in by_role.values())
    cost = sum(v["cost_usd"] for v in by_role.values())
    estimated = sum(int(v["estimated_usage_calls"]) for v in by_role.values())
    sandbox = sandbox_usage(store, accepted)
    return {
        "documents": {
            "total": sum(counts.values()) + len(skipped) + (progress.failed if progress else 0),
            "accepted": accepted,
            "exhausted": counts.get("exhausted", 0),
            "failed_this_session": progress.failed if progress else 0,
            "finished_before_this_session": progress.already_done if progress else None,
            "skipped": dict(Counter(s["reason"] for s in skipped)),
        },
        "rounds": rounds,
        "acceptance_rate": accepted / max(1, accepted + counts.get("exhausted", 0)),
        "rejections": dict(rejections.most_common()),
        "usage_by_role": by_role,
        "calls": calls,
        "input_tokens": sum(int(v["input_tokens"]) for v in by_role.values()),
        "output_tokens": sum(int(v["output_tokens"]) for v in by_role.values()),
        "estimated_usage_calls": estimated,  # calls whose server sent no usage: their tokens are estimates
        "cache_hits": cache_hits,
        "cache_write_errors": cache_write_errors,  # answers the call cache could not save (asked again later)
        "cost_usd": round(cost, 6),
        "calls_per_accepted_example": round(calls / accepted, 2) if accepted else None,
        "cost_per_accepted_example": round(cost / accepted, 6) if accepted else None,
        "wall_s": round(total_wall, 3),  # sessions that ended; a killed session's time is not known
        "sessions": len(sessions),
        "sessions_unfinished": sum(1 for x in sessions if not x.get("ended")),  # killed (or still running)
        "recipe_hash": store.get_meta("recipe_hash"),
        "simulated_models": simulated or [],
        "failures": progress.failures if progress else [],
        "stopped": progress.stopped if progress else None,
        "skipped": skipped,
        **({"sandbox": sandbox} if sandbox else {}),
    }


def sandbox_usage(store: RunStore, accepted: int) -> dict[str, Any] | None:
    """Sandbox runs and seconds of a run, counted from its stored episodes (solver attempts and the
    pre-solver checks), with the sandbox kind from its config; None when nothing ran in a sandbox."""
    runs, seconds = 0, 0.0
    for ep in store.episodes():
        for r in ep["rounds"]:
            for a in [*(r.get("weak") or []), *(r.get("strong") or [])]:
                d = a.get("details") or {}
                if "seconds" in d:
                    runs += 1
                    seconds += float(d["seconds"])
            quality = r.get("quality") or {}
            for q in (quality, quality.get("final") or {}):
                for d in ((q.get("measured") or {}).get("runs") or {}).values():
                    runs += 1
                    seconds += float(d.get("seconds", 0.0))
    cfg = store.get_meta("config") or {}
    kind = (cfg.get("sandbox") or {}).get("kind")
    if not runs and not (kind and cfg.get("loop", {}).get("profile") == "code"):
        return None
    out: dict[str, Any] = {
        "kind": kind,
        "runs": runs,
        "seconds": round(seconds, 3),
        "seconds_per_accepted_example": round(seconds / accepted, 3) if accepted else None,
    }
    if kind == "subprocess":
        out["warning"] = WEAKER_SANDBOX_WARNING
    return out


def write_outputs(
    store: RunStore, out_dir: Path, *, progress: RunProgress | None = None, simulated: list[str] | None = None
) -> dict[str, Any]:
    n_examples = atomic_jsonl(out_dir / "examples.jsonl", store.examples())
    atomic_jsonl(out_dir / "episodes.jsonl", store.episodes())
    summary = summarize(store, progress=progress, simulated=simulated)
    summary["outputs"] = {
        "examples": str(out_dir / "examples.jsonl"),
        "episodes": str(out_dir / "episodes.jsonl"),
        "store": str(out_dir / "run.db"),
        "examples_written": n_examples,
    }
    atomic_text(out_dir / "summary.json", json.dumps(summary, indent=2) + "\n")
    return summary
