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
from autodata.errors import ConfigError
from autodata.frozen import frozen_hash
from autodata.judging.templates import template_source as judging_template_source
from autodata.llm.endpoint import WaitHook
from autodata.llm.limits import request_priority
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
    "challenger_instruction.j2",
    "challenger_checks.j2",
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


# Acceptance thresholds that are fractions (scores and their means lie in [0, 1]).
FRACTION_THRESHOLDS = (
    "weak_mean_max",
    "weak_mean_below",
    "weak_best_max",
    "strong_mean_min",
    "strong_mean_below",
    "gap_min",
    "correct_at",
)
META_ROLES = ("analyzer", "implementer")


def config_problems(cfg: Config) -> list[str]:
    """What ``autodata run`` would refuse, or would run for nothing, found without a network.

    - the roles the profile, the acceptance preset and the orchestrator need (when the config is
      meant for ``run``: it maps roles or names documents), and ``analyzer``/``implementer`` when
      it has an ``optimize`` section;
    - acceptance thresholds outside [0, 1] (``strong_mean_min: 2.0`` can never be met: every
      example would be rejected, every call paid for);
    - thresholds no scores can meet together: a strong mean at least ``strong_mean_min`` and below
      ``strong_mean_below``; a gap larger than the highest strong mean allowed; more correct strong
      attempts than ``k_strong``; ``min_valid_attempts`` above k.

    Each problem is ``dotted.key: what is wrong``.
    """
    return _problems_and_roles(cfg)[0]


def _problems_and_roles(cfg: Config) -> tuple[list[str], dict[str, str] | None]:
    """:func:`config_problems`, and the run's roles (:func:`run_roles`) when they could be found."""
    problems: list[str] = []
    roles = None
    if cfg.roles or cfg.documents.paths:
        try:
            roles = run_roles(cfg)
        except ConfigError as exc:
            problems += [f"{d} (needed by `autodata run` with this profile and orchestrator)" for d in exc.details]
    if cfg.optimize != type(cfg.optimize)():  # an optimize section set to something (a dump repeats defaults)
        problems += [
            f"roles.{r}: required by `autodata optimize` (this config has an optimize section)"
            for r in META_ROLES
            if r not in cfg.roles
        ]
    loop = cfg.loop
    try:
        p = run_preset(cfg)
    except ValueError as exc:
        return [*problems, f"loop.acceptance: {exc}"], roles
    given = loop.acceptance.overrides

    def key(name: str) -> str:
        return f"loop.acceptance.overrides.{name}" if name in given else f"loop.acceptance.preset ({p.name}) {name}"

    for name in FRACTION_THRESHOLDS:
        v = getattr(p, name)
        if v is not None and not (isinstance(v, int | float) and 0 <= v <= 1):
            problems.append(f"{key(name)}: {v!r} is outside [0, 1]; scores and their means are fractions")
    if problems:
        return problems, roles
    prof = profile(loop.profile)
    k_weak, k_strong = loop.k_weak or prof.k_weak, loop.k_strong or prof.k_strong
    if p.strong_mean_min is not None and p.strong_mean_below is not None and p.strong_mean_min >= p.strong_mean_below:
        problems.append(
            f"{key('strong_mean_min')}: {p.strong_mean_min} is not below strong_mean_below {p.strong_mean_below}; "
            "no strong mean can be both"
        )
    top = p.strong_mean_below if p.strong_mean_below is not None else 1.0
    if p.gap_min is not None and (p.gap_min > top or (p.strong_mean_below is not None and p.gap_min >= top)):
        problems.append(f"{key('gap_min')}: {p.gap_min} is larger than any strong mean allowed (< {top}) minus 0")
    if p.strong_correct_min is not None and not 0 <= p.strong_correct_min <= k_strong:
        problems.append(
            f"{key('strong_correct_min')}: {p.strong_correct_min} correct strong attempts cannot happen in "
            f"k_strong = {k_strong} attempts (raise loop.k_strong or lower the threshold)"
        )
    if p.weak_correct_max is not None and p.weak_correct_max < 0:
        problems.append(f"{key('weak_correct_max')}: {p.weak_correct_max} must be 0 or more")
    if loop.min_valid_attempts is not None and loop.min_valid_attempts > min(k_weak, k_strong):
        problems.append(
            f"loop.min_valid_attempts: {loop.min_valid_attempts} is more than the attempts drawn "
            f"(k_weak {k_weak}, k_strong {k_strong})"
        )
    return problems, roles


def check_config(cfg: Config) -> dict[str, str]:
    """:func:`config_problems` as one :class:`ConfigError` (exit 2), before anything is written.

    Returns the run's roles (role -> endpoint, :func:`run_roles`) for a config meant for ``run``, else {}."""
    problems, roles = _problems_and_roles(cfg)
    if problems:
        raise ConfigError("the configuration cannot produce a run", details=problems)
    return roles or {}


def settings_from(cfg: Config) -> EpisodeSettings:
    """:meth:`EpisodeSettings.from_config` without the config check (the baselines and the optimizer:
    a caller that computes a run's settings once and passes them down)."""
    return EpisodeSettings.from_config(cfg)


def run_settings(cfg: Config) -> EpisodeSettings:
    """The run's settings, computed once per run: the config checked (:func:`check_config`), then
    :meth:`EpisodeSettings.from_config` with the roles that check found. Everything else a run needs
    to know about its roles (pre-flight, key check, recipe and frozen hashes, executors, records,
    summary) reads ``settings.endpoints.roles()``.

    Raises :class:`ConfigError` (every problem, with its key) or ``UserError`` (the profile's sandbox
    cannot run)."""
    return EpisodeSettings.from_config(cfg, roles=check_config(cfg) or None)


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
    meta: dict[str, Any] | None = None,
    command: str = "run",
    on_wait: WaitHook | None = None,
) -> dict[str, Any]:
    """``settings``, ``record`` and ``recipe`` let the baselines reuse this driver with their own proposer,
    their own choice of examples to keep and their own recipe hash; the defaults are the inner loop.
    ``settings`` given means the caller has checked the config (:func:`run_settings` does both), and
    this run uses its roles (``settings.endpoints.roles()``) everywhere; none given: :func:`run_settings`.
    ``meta``: more facts stored in the run's metadata (``autodata run`` stores the evolved recipe it
    applied, ``{"hash", "file"}`` or None, and the frozen hash). ``command``: the command named in the
    run-directory lock (what a second process writing the same directory is told holds it).
    ``on_wait``: told of long waits (``ModelRuntime.on_wait``) of the executor's runtimes.

    Episodes run on an executor (``executor.kind``: this process, or a pool of Ray workers); this
    coroutine stays the single writer of the run store either way."""
    if not cfg.documents.paths:
        raise ConfigError(
            "`autodata run` needs documents", details=["documents.paths: give folders, files, globs or hf:// datasets"]
        )
    settings = settings or run_settings(cfg)  # the run's roles, computed once
    roles = settings.endpoints.roles()
    check_api_keys(cfg, sorted(set(roles.values())))  # a missing key is a user error, now
    rhash = recipe or recipe_hash(cfg, roles)
    check_inputs(cfg.documents.paths)  # a typo in a path fails before the run directory is touched
    with DirLock(out_dir, command):  # one writer per run directory; a killed holder's lock is released by the OS
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
            meta=meta,
            on_wait=on_wait,
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
    meta: dict[str, Any] | None = None,
    on_wait: WaitHook | None = None,
) -> dict[str, Any]:
    store = RunStore(out_dir)
    store.check_recipe(rhash, force=force_new_recipe)
    store.set_meta("config", cfg.redacted_dump())
    for key, value in (meta or {}).items():  # what the caller knows about the run (the evolved recipe applied, ...)
        store.set_meta(key, value)
    store.begin_session()
    # a resumed run asks the store for each document (a set of the finished ids would grow with the run)
    resuming = store.has_documents()
    progress = RunProgress()
    tasks: set[asyncio.Task[None]] = set()
    fhash = (meta or {}).get("frozen_hash") or frozen_hash(cfg, settings.endpoints.roles())
    store.set_meta("frozen_hash", fhash)  # every run's examples say what judged them, whoever started it
    job = DocumentJob(cfg, settings, record, rhash, fhash)
    used = settings.endpoints.names()
    if executor is None:
        if cfg.executor.kind == "local":
            executor = LocalExecutor(cfg, runtime=runtime, use_cache=use_cache)
        else:  # the caller (baseline, the Python API) built none: the one executor.kind names
            from autodata.executors import make_executor

            executor = make_executor(cfg, runtime=runtime, use_cache=use_cache, roles=settings.endpoints.roles())
    if on_wait is not None:
        executor.on_wait = on_wait  # type: ignore[attr-defined]  # local and Ray executors both take one
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
            simulated_roles_endpoints(cfg, executor, store, used)  # a killed session's run is labelled too

    flusher = asyncio.create_task(flush_calls())

    async def one(doc: Document, seq: int) -> None:
        # this document's calls wait for a slot behind those of documents admitted before it (llm/limits.py)
        request_priority.set(seq)
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

    # the reader's duplicate index is a scratch file in the run directory (this process holds its lock)
    documents = config_documents(cfg.documents, index_dir=out_dir)
    try:
        seq = 0
        for item in documents:
            if isinstance(item, Skipped):
                store.record_skipped(item.source, item.reason, item.detail)
                progress.skipped += 1
                continue
            if limit is not None and seq >= limit:
                break
            if progress.stopped:
                break
            seq += 1
            if resuming and store.is_finished(item.id):
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
        documents.close()  # the duplicate index's file is removed now, not when the reader is collected
        flusher.cancel()
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        try:
            store.record_calls(executor.leftover_calls())
        finally:  # the executor's clients, cache and workers are released whatever happened above
            usage = await executor.close()
        store.record_calls(executor.leftover_calls())  # what Ray workers reported last, as they closed
        store.end_session(progress.documents_done, usage)
    simulated = simulated_roles_endpoints(cfg, executor, store, used)
    summary = write_outputs(store, out_dir, progress=progress, simulated=simulated)
    store.close()
    return summary


def simulated_roles_endpoints(cfg: Config, executor: Any, store: RunStore, used: list[str]) -> list[str]:
    """The endpoints of this run (``used``: ``settings.endpoints.names()``) whose answers are simulated:
    ``provider: simulated``, or a server that said so in its replies (``serve-sim`` behind ``provider: openai``:
    ``system_fingerprint: autodata-simulated``). Kept in the store (meta ``simulated_endpoints``, the union
    over sessions) for the card and the report."""
    names = {n for n in used if cfg.models[n].provider == "simulated"}
    names.update(n for n in executor.simulated_endpoints() if n in used)  # a Ray executor's: its workers' reports
    names.update(store.get_meta("simulated_endpoints") or [])
    store.set_meta("simulated_endpoints", sorted(names))
    return sorted(names)


MAX_AUTO_IN_FLIGHT = 4096


def documents_in_flight(cfg: Config, settings: EpisodeSettings | None = None) -> int:
    """The most documents in flight: ``loop.concurrency`` when it is a number; for ``auto``, twice the
    sum of the run's endpoints' ``max_concurrency`` (between 8 and 4096), enough for every endpoint to
    stay full while documents wait between steps, and a bound on memory (admission by budget usually
    stops well below it)."""
    if cfg.loop.concurrency != "auto":
        return int(cfg.loop.concurrency)
    names = settings.endpoints.names() if settings is not None else set(run_roles(cfg).values())
    total = sum(cfg.models[n].max_concurrency for n in names if n in cfg.models)
    return max(8, min(MAX_AUTO_IN_FLIGHT, 2 * total))


def summarize(
    store: RunStore, *, progress: RunProgress | None = None, simulated: list[str] | None = None
) -> dict[str, Any]:
    from autodata.store.costs import costs
    from autodata.store.flags import flag_counts

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
        "simulated_models": sorted(set(simulated or []) | set(store.get_meta("simulated_endpoints") or [])),
        "simulated": bool(simulated or store.get_meta("simulated_endpoints")),
        "servers": server_counts(store),
        "failures": progress.failures if progress else [],
        "stopped": progress.stopped if progress else None,
        "skipped": skipped,
        **costs(store, accepted),  # what the examples cost to make, and what the latest session paid
        "recipe": store.get_meta("recipe"),
        "flagged": flag_counts(store.flags()),  # examples flagged by contamination / dedup (left out of exports)
        **({"sandbox": sandbox} if sandbox else {}),
    }


SERVER_COUNTERS = ("estimated_calls", "estimated_tokens", "step_downs", "schema_fallbacks")


def server_counts(store: RunStore) -> dict[str, Any]:
    """What the servers did, summed over the sessions' usage: replies without an answer by problem code
    (``Completion.problem``), calls whose tokens are our estimate (no ``usage`` from the server), endpoints
    stepped down from json_schema to JSON mode, single requests sent in JSON mode after a refused schema."""
    out: dict[str, Any] = {k: 0 for k in SERVER_COUNTERS}
    problems: Counter[str] = Counter()
    for session in store.sessions():
        total = (session.get("usage") or {}).get("total") or {}
        for k in SERVER_COUNTERS:
            out[k] += int(total.get(k, 0))
        problems.update(total.get("problems") or {})
    out["replies_without_answer"] = dict(problems.most_common())
    return out


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
    n_examples = atomic_jsonl(out_dir / "examples.jsonl", (e.stored() for e in store.examples()))
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
