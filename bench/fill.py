"""Keeping GPU servers busy: time to all accepted examples against what the servers could do.

    python bench/fill.py [--quick] [--docs 1000] [--time-scale S] [--variants auto,fixed8,sequential]
                         [--adaptive] [--n] [--max-batch B] [--headroom H] [--seq-docs 10]
                         [--fixed-docs N] [--fixed-time-scale S] [--seq-time-scale S]
                         [--executor local|ray] [--ray-cluster] [--json PATH]

Three ``autodata serve-sim`` processes with the GPU capacity model (``--gpu-model``), one per
simulated server, of different sizes: the weak solver on ``llama-8b-1xh100`` (one GPU), the judge
and the quality verifier on ``qwen-32b-2xh100`` (two GPUs), the strong solver and the challenger on
``llama-70b-8xh100`` (eight GPUs). Each variant starts fresh servers (empty prefix caches, counters
at zero) and runs ``autodata run`` in its own process, with a fresh call cache, over the same
documents (about 700 tokens each, distinct). ``--max-batch B`` gives every server a batch of B and a
prefix cache shrunk in proportion (the preset's blocks x B / its batch): a smaller deployment of the
same shape, whose cache is as crowded by a full batch as the preset's.

Figures (all from the servers' ``/metrics`` and the run's own summary):

- **ideal**: the busiest server's work, i.e. prefill of the prompt tokens its prefix cache did not
  hold plus decode of every generated token at its peak (full-batch) throughput
  (``serve_sim:work_seconds_total``), in wall seconds (x the time scale). No schedule beats it.
- **time/ideal**: the run's wall time (its session record: first document in to last example
  written) over the ideal. Goal <= 1.10.
- **busy**: each server's share of the run's wall time with a batch on the GPU
  (``serve_sim:busy_seconds_total``); the last line's B is the busiest server's. Goal >= 0.90.
  **busy***: the same over the server's own stretch of work, from its first request in to its last
  answer out (``serve_sim:active_seconds``): "while work remains" for that server. **idle**: the share
  of the polls in that stretch with nothing running or waiting there, and how many of those came while
  another server ran a full batch (the documents were queued behind that server, not missing).
- **util**: each server's work / wall: how close to its peak it ran (a batch of 1 is busy but slow).
- prefix-cache hit rate per server (``vllm:prefix_cache_hits_total / vllm:prefix_cache_queries_total``),
  prefill tokens, calls and tokens per accepted example.
- **start-up** and **active**: from the run's call log, session start to the first request sent (on
  Ray: the instance and its workers starting), and first request sent to last answer back, with
  active/ideal: how close to the ideal the run came once requests flowed.
- documents in flight (time-weighted mean and most, from the run's call log: a document counts from
  its first call's start to its last call's end) and the judge's latency as the client saw it.

Variants: ``auto`` (``loop.concurrency: auto``), ``fixed8`` (``loop.concurrency: 8``, the old
default), ``sequential`` (one document at a time and one request at a time per endpoint: the
paper's agent workflow run naively; run on ``--seq-docs`` documents and its time extrapolated
linearly to ``--docs``, which is exact for a sequential loop up to the documents' variance).
``--adaptive`` adds ``auto`` with ``loop.adaptive_stopping: true``; ``--n`` adds ``auto`` with
``supports_n: true`` on the solver endpoints. ``--executor ray`` runs every variant on 2 Ray workers
(budgets split between them), in a loopback-only network namespace as ``bench/e2e.py`` does; the run
starts its own Ray instance (its start-up is in the wall time) unless ``--ray-cluster``, where every
variant joins one ``ray start --head`` instance started before the first (as on a cluster kept running).

The client and the three servers share this machine's cores, so the time scale must leave the
client enough wall time per call (on a loaded machine a scale of 0.1 starved the client: the servers
ran 5 of 16 sequences). ``fixed8`` and ``sequential`` keep a few requests in flight: they run side by
side, after the others, each on its own servers, and may run on a faster clock
(``--fixed-time-scale``, ``--seq-time-scale``); the side-by-side table compares the variants in
simulated seconds. ``--quick``: 80 documents, batches of 16, time scale 0.5 (``fixed8`` on 12
documents at 0.25, ``sequential`` on 1 at 0.2, extrapolated), under 3 minutes on 2 cores. The last
line reads ``time/ideal R  busy B`` for ``auto``.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import itertools
import json
import os
import random
import re
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from autodata.sim.gpu import PRESETS
from memory import WORDS
from throughput import SimServer

ROOT = Path(__file__).resolve().parents[1]
SERVERS = {"weak": "llama-8b-1xh100", "judge": "qwen-32b-2xh100", "strong": "llama-70b-8xh100"}
# endpoint -> (server, simulated model)
ENDPOINTS = {
    "weak": ("weak", "sim-weak"),
    "strong": ("strong", "sim-strong"),
    "challenger": ("strong", "sim-challenger"),
    "judge": ("judge", "sim-judge"),
}
LIGHT = ("fixed8", "sequential")  # variants with a few requests in flight: run side by side
METRIC = re.compile(r"^([a-z_:]+)\{[^}]*\} (\S+)$", re.M)


def write_docs(path: Path, n: int, words: int = 450) -> None:
    """n distinct documents of about ``words`` words (about 700 simulator tokens) each."""
    rng = random.Random(n)
    with path.open("w") as fh:
        for i in range(n):
            sentences = []
            for _ in range(words // 15):
                sentences.append(" ".join(rng.choice(WORDS) for _ in range(14)) + f" {rng.randint(1, 999)}.")
            text = f"Study {i}. " + " ".join(sentences)
            fh.write(json.dumps({"id": f"d{i}", "title": f"Document {i}", "text": text}) + "\n")


def start_servers(tmp: Path, scale: float, max_batch: int | None) -> dict[str, SimServer]:
    """The three servers, started side by side (each start is a Python start-up: seconds on a loaded machine)."""
    servers: dict[str, SimServer] = {}
    errors: list[BaseException] = []

    def start(name: str, preset: str) -> None:
        extra = ["--time-scale", f"{scale:g}"]
        if max_batch:  # a smaller deployment of the same shape: the prefix cache shrinks with the batch
            base = PRESETS[preset]
            blocks = max(1, round(base.cache_blocks * max_batch / base.max_batch))
            spec = tmp / f"{name}.yaml"
            spec.write_text(yaml.safe_dump({"base": preset, "max_batch": max_batch, "cache_blocks": blocks}))
            extra += ["--gpu-config", str(spec)]
        else:
            extra += ["--gpu-model", preset]
        try:
            servers[name] = SimServer(0, extra=extra)
        except BaseException as exc:  # re-raised below, after the others are stopped
            errors.append(exc)

    threads = [threading.Thread(target=start, args=item) for item in SERVERS.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        for s in servers.values():
            s.stop()
        raise errors[0]
    return {name: servers[name] for name in SERVERS}


def metrics(server: SimServer) -> dict[str, float]:
    with urllib.request.urlopen(server.url.rsplit("/v1", 1)[0] + "/metrics", timeout=30) as r:
        return {k: float(v) for k, v in METRIC.findall(r.read().decode())}


def config(
    urls: dict[str, str], docs: Path, batch: dict[str, int], variant: str, headroom: float, executor: str = "local"
) -> dict:
    data = yaml.safe_load((ROOT / "examples" / "quickstart.yaml").read_text())
    data["documents"] = {"paths": [str(docs)], "min_chars": 50}
    data["cache"] = {"enabled": True, "path": str(docs.parent / f"cache-{variant}.db")}
    seq = variant == "sequential"
    data["loop"]["concurrency"] = {"auto": "auto", "adaptive": "auto", "n": "auto", "fixed8": 8, "sequential": 1}[
        variant
    ]
    data["loop"]["adaptive_stopping"] = variant == "adaptive"
    models = {}
    for name, (server, model) in ENDPOINTS.items():
        # endpoints sharing a server (challenger and strong) each get its whole batch: the server queues the rest
        conc = 1 if seq else max(1, round(batch[server] * headroom))
        models[name] = {"provider": "openai", "model": model, "base_url": urls[server], "max_concurrency": conc,
                        "min_concurrency": conc, "timeout_s": 3600, "http_transport": "direct",
                        "supports_n": variant == "n" and name in ("weak", "strong"),
                        "sampling": {"temperature": 0} if name == "judge" else {}}  # fmt: skip
    data["models"] = models
    data["executor"] = {"kind": executor, "workers": 2}  # Ray: every budget is split between the 2 workers
    return data


def one(args: argparse.Namespace, variant: str, docs_n: int, tmp: Path, scale: float) -> dict:
    docs = tmp / f"docs-{variant}.jsonl"
    write_docs(docs, docs_n)
    servers = start_servers(tmp, scale, args.max_batch)
    try:
        urls = {name: s.url for name, s in servers.items()}
        batch = {name: int(metrics(s)["serve_sim:max_batch"]) for name, s in servers.items()}
        cfg = tmp / f"cfg-{variant}.yaml"
        cfg.write_text(yaml.safe_dump(config(urls, docs, batch, variant, args.headroom, args.executor)))
        out = tmp / f"run-{variant}"
        samples: dict[str, list[tuple[float, float]]] = {name: [] for name in servers}
        polls: list[dict[str, tuple[float, float]]] = []  # every server at one poll
        stop = threading.Event()

        def poll() -> None:  # running and waiting at each server, twice a second
            while not stop.wait(0.5):
                now = {}
                for name, s in servers.items():
                    try:
                        x = metrics(s)
                    except OSError:
                        continue
                    now[name] = (x["vllm:num_requests_running"], x["vllm:num_requests_waiting"])
                    samples[name].append(now[name])
                if len(now) == len(servers):
                    polls.append(now)

        poller = threading.Thread(target=poll, daemon=True)
        started = time.perf_counter()
        poller.start()
        try:
            env, extra = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}, []
            if args.ray_head is not None:  # --ray-cluster: join the running instance
                address, env = args.ray_head
                extra = ["--ray-address", address]
            res = subprocess.run(
                [sys.executable, "-m", "autodata", "run", str(cfg), "--out", str(out), "-q", *extra],
                capture_output=True, text=True, env=env,
            )  # fmt: skip
        finally:
            stop.set()
            poller.join()
        process = time.perf_counter() - started
        if res.returncode not in (0, 1):
            raise SystemExit(res.stderr[-3000:])
        m = {name: metrics(s) for name, s in servers.items()}
    finally:
        for s in servers.values():
            s.stop()
    summary = json.loads((out / "summary.json").read_text())
    flight = in_flight(out / "run.db")
    wall = summary["wall_s"]
    # from the run's call log: session start to the first request sent (a Ray instance and its workers
    # starting, imports), and the active phase, first request sent to last answer back
    db = sqlite3.connect(str(out / "run.db"))
    try:
        (started,) = db.execute("SELECT MIN(started) FROM sessions").fetchone()
        first, last = db.execute("SELECT MIN(at - latency_s), MAX(at) FROM calls WHERE cache_hit = 0").fetchone()
    finally:
        db.close()
    per = {}
    for name, x in m.items():
        per[name] = {
            "work_s": x["serve_sim:work_seconds_total"] * scale,
            "busy": x["serve_sim:busy_seconds_total"] * scale / wall,
            # over the server's own stretch of work, from its first request in to its last answer out
            "busy_active": x["serve_sim:busy_seconds_total"] / max(1e-9, x["serve_sim:active_seconds"]),
            "active_s": x["serve_sim:active_seconds"] * scale,
            "util": x["serve_sim:work_seconds_total"] * scale / wall,
            "hit_rate": x["vllm:prefix_cache_hits_total"] / max(1.0, x["vllm:prefix_cache_queries_total"]),
            "prompt_tokens": x["vllm:prompt_tokens_total"],
            "prefill_tokens": x["serve_sim:prefill_tokens_total"],
            "generation_tokens": x["vllm:generation_tokens_total"],
            "requests": x["vllm:request_success_total"],
            "batch": batch[name],
            # over the samples taken while the server had work: mean running, share with a full batch, mean waiting
            "mean_running": _mean([r for r, w in samples[name] if r or w]),
            "full_share": _mean([float(r >= batch[name]) for r, w in samples[name] if r or w]),
            "mean_waiting": _mean([w for r, w in samples[name] if r or w]),
            **idle_while_full(polls, name, batch),
        }
    ideal = max(p["work_s"] for p in per.values())
    busiest = max(per, key=lambda n: per[n]["work_s"])
    accepted = summary["documents"]["accepted"]
    tokens = sum(r["input_tokens"] + r["output_tokens"] for r in summary["usage_by_role"].values())
    return {
        "variant": variant,
        "docs": docs_n,
        "accepted": accepted,
        "failed": summary["documents"]["failed_this_session"],
        "wall_s": wall,
        "time_scale": scale,
        "process_s": process,
        "ideal_s": ideal,
        "ratio": wall / ideal,
        "busiest": busiest,
        "servers": per,
        "calls": summary["calls"],
        **flight,
        "calls_per_accepted": summary["calls"] / max(1, accepted),
        "tokens_per_accepted": tokens / max(1, accepted),
        "prefill_per_accepted": sum(p["prefill_tokens"] for p in per.values()) / max(1, accepted),
        "startup_s": first - started,
        "active_s": last - first,
        "active_ratio": (last - first) / ideal,
    }


def in_flight(db: Path) -> dict[str, float]:
    """From the run's call log: documents in flight (time-weighted mean and most, a document counting from its
    first call's start to its last call's end) and the judge's mean latency as the client saw it (its own
    window's queue included), in wall seconds."""
    con = sqlite3.connect(db)
    try:
        rows = con.execute("SELECT document_id, at - latency_s, at, role FROM calls WHERE document_id IS NOT NULL")
        span: dict[str, list[float]] = {}
        judge: list[float] = []
        for doc, start, end, role in rows:
            s = span.setdefault(doc, [start, end])
            s[0], s[1] = min(s[0], start), max(s[1], end)
            if role == "judge":
                judge.append(end - start)
    finally:
        con.close()
    events = sorted([(a, 1) for a, _ in span.values()] + [(b, -1) for _, b in span.values()])
    area = most = level = 0.0
    for (t, d), (t2, _) in itertools.pairwise(events):
        level += d
        most = max(most, level)
        area += level * (t2 - t)
    total = events[-1][0] - events[0][0] if events else 0.0
    return {"docs_in_flight": area / total if total else 0.0, "docs_in_flight_max": most,
            "judge_latency_s": _mean(judge)}  # fmt: skip


def idle_while_full(polls: list[dict[str, tuple[float, float]]], name: str, batch: dict[str, int]) -> dict:
    """Why a server was idle: over the polls between its first and last with work, the share with nothing
    running or waiting there ("idle"), and the share of those idle polls at which another server had a full
    batch (its work was waiting behind that server's, not missing from the corpus)."""
    busy_at = [i for i, p in enumerate(polls) if any(p[name])]
    if not busy_at:
        return {"idle_share": 0.0, "idle_behind_full": 0.0}
    stretch = polls[busy_at[0] : busy_at[-1] + 1]
    idle = [p for p in stretch if not any(p[name])]
    behind = [p for p in idle if any(p[o][0] >= batch[o] for o in p if o != name)]
    return {"idle_share": len(idle) / len(stretch), "idle_behind_full": len(behind) / len(idle) if idle else 0.0}


def _mean(xs: list[float]) -> float:
    return sum(xs) / len(xs) if xs else 0.0


def show(r: dict, scale_to: int | None = None) -> None:
    extra = ""
    if scale_to and scale_to != r["docs"]:
        f = scale_to / r["docs"]
        extra = f"  (extrapolated to {scale_to} documents: wall {r['wall_s'] * f:.1f} s)"
    print(f"\n{r['variant']}: {r['docs']} documents, {r['accepted']} accepted, {r['failed']} failed; wall "
          f"{r['wall_s']:.2f} s (process {r['process_s']:.2f} s); ideal {r['ideal_s']:.2f} s ({r['busiest']}); "
          f"time/ideal {r['ratio']:.3f}; time scale {r['time_scale']:g}{extra}")  # fmt: skip
    print("  (busy: over the run's wall time; busy*: over the server's own stretch, first request in to last answer;"
          " idle: polls with nothing running or waiting in that stretch, and how many of them came while another"
          " server ran a full batch)")  # fmt: skip
    print(f"  start-up {r['startup_s']:.1f} s (session start to the first request), active {r['active_s']:.1f} s "
          f"(first request to last answer): active/ideal {r['active_ratio']:.3f}")  # fmt: skip
    print(f"  per accepted example: {r['calls_per_accepted']:.1f} calls, {r['tokens_per_accepted']:.0f} tokens, "
          f"{r['prefill_per_accepted']:.0f} prefill tokens (after prefix-cache hits)")  # fmt: skip
    print(f"  documents in flight: mean {r['docs_in_flight']:.1f}, most {r['docs_in_flight_max']:.0f}; judge latency "
          f"(client queue included) {r['judge_latency_s']:.2f} s")  # fmt: skip
    print("  server   busy  busy*   util  work s  requests  prompt tok  prefill tok  gen tok  hit rate  batch  running "
          " full  waiting")  # fmt: skip
    for name, p in r["servers"].items():
        print(f"  {name:<7} {p['busy']:5.2f}  {p['busy_active']:5.2f}  {p['util']:5.2f}  {p['work_s']:6.2f}  "
              f"{p['requests']:8.0f}  "
              f"{p['prompt_tokens']:10.0f}  {p['prefill_tokens']:11.0f}  {p['generation_tokens']:7.0f}  "
              f"{p['hit_rate']:8.3f}  {p['batch']:5d}  {p['mean_running']:7.1f}  {p['full_share']:4.2f}  "
              f"{p['mean_waiting']:7.1f}  idle {p['idle_share']:.2f} "
              f"({p['idle_behind_full']:.0%} behind a full batch)")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="80 documents, batches of 16, time scale 0.5")
    ap.add_argument("--docs", type=int, default=1000)
    ap.add_argument("--time-scale", type=float, default=0.1, help="wall seconds per simulated second")
    ap.add_argument("--fixed-time-scale", type=float, default=None, help="fixed8's time scale (default: --time-scale)")
    ap.add_argument("--seq-time-scale", type=float, default=None, help="sequential's (default: --time-scale)")
    ap.add_argument("--max-batch", type=int, default=None, help="every server's batch (default: the presets' 256)")
    ap.add_argument("--headroom", type=float, default=1.25, help="max_concurrency = batch x headroom")
    ap.add_argument("--variants", default="auto,fixed8,sequential")
    ap.add_argument("--adaptive", action="store_true", help="also auto with adaptive stopping")
    ap.add_argument(
        "--n", action="store_true", help="also auto with supports_n on the solvers (k samples, one request)"
    )
    ap.add_argument("--seq-docs", type=int, default=10, help="documents the sequential variant runs")
    ap.add_argument("--fixed-docs", type=int, default=None, help="documents fixed8 runs (default: --docs)")
    ap.add_argument("--executor", default="local", choices=["local", "ray"], help="ray: 2 workers")
    ap.add_argument(
        "--ray-cluster", action="store_true", help="ray: join a `ray start --head` instance started before the runs"
    )
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    if args.executor == "ray" and os.environ.get("AUTODATA_BENCH_NETNS") != "1":
        from e2e import in_namespaces

        in_namespaces()  # Ray's servers bind every interface: run in a loopback-only namespace
    if args.quick:
        args.docs, args.max_batch, args.time_scale = 80, args.max_batch or 16, 0.5
        args.seq_docs, args.fixed_docs = 1, args.fixed_docs or 12
        # a few requests in flight: the client follows a faster clock, and the whole command stays short
        args.fixed_time_scale = args.fixed_time_scale or 0.25
        args.seq_time_scale = args.seq_time_scale or 0.2
    variants = [v for v in args.variants.split(",") if v]
    if args.adaptive:
        variants.append("adaptive")
    if args.n:
        variants.append("n")
    print(f"{args.docs} documents; servers: " + ", ".join(f"{k} {v}" for k, v in SERVERS.items())
          + f"; max batch {args.max_batch or 'preset'}; max_concurrency = batch x {args.headroom:g}; "
          f"time scale {args.time_scale:g} (fixed8 {args.fixed_time_scale or args.time_scale:g}, sequential "
          f"{args.seq_time_scale or args.time_scale:g}); executor {args.executor}")  # fmt: skip
    results = []

    def run_variant(v: str) -> dict:
        n = {"sequential": args.seq_docs, "fixed8": args.fixed_docs or args.docs}.get(v, args.docs)
        scale = {"sequential": args.seq_time_scale, "fixed8": args.fixed_time_scale}.get(v) or args.time_scale
        return one(args, v, n, Path(t), scale)

    with tempfile.TemporaryDirectory() as t, contextlib.ExitStack() as stack:
        args.ray_head = None
        if args.executor == "ray" and args.ray_cluster:  # one instance for every variant, kept up between runs
            from e2e import ray_cluster

            args.ray_head = stack.enter_context(ray_cluster())
        # the variants with many requests in flight one after the other (each needs the client's CPU); the light
        # ones (a few requests in flight, their own servers) side by side, after them
        heavy = [v for v in variants if v not in LIGHT]
        for v in heavy:
            results.append(run_variant(v))
            show(results[-1], args.docs)
        light = [v for v in variants if v in LIGHT]
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, len(light))) as pool:
            for r in pool.map(run_variant, light):
                results.append(r)
                show(r, args.docs)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    auto = next((r for r in results if r["variant"] == "auto"), results[0])
    # in simulated (GPU) seconds, so variants run at different time scales compare
    per_doc_ideal = auto["ideal_s"] / auto["time_scale"] / auto["docs"]
    print(f"\nside by side on {args.docs} documents, in simulated seconds (ideal {per_doc_ideal * args.docs:.1f} s, "
          "from auto's servers):")  # fmt: skip
    for r in results:
        wall = r["wall_s"] / r["time_scale"] * args.docs / r["docs"]
        how = "measured" if r["docs"] == args.docs else f"extrapolated from {r['docs']} documents"
        ratio = wall / (per_doc_ideal * args.docs)
        print(f"  {r['variant']:<10} time {wall:8.1f} s  time/ideal {ratio:6.2f}  calls/accepted "
              f"{r['calls_per_accepted']:5.1f}  tokens/accepted {r['tokens_per_accepted']:6.0f}  ({how})")  # fmt: skip
    print(f"time/ideal {auto['ratio']:.2f}  busy {auto['servers'][auto['busiest']]['busy']:.2f}")


if __name__ == "__main__":
    main()
