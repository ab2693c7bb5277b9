"""Keeping GPU servers busy: time to all accepted examples against what the servers could do.

    python bench/fill.py [--quick] [--docs 1000] [--time-scale S] [--variants auto,fixed8,sequential]
                         [--adaptive] [--n] [--max-batch B] [--headroom H] [--seq-docs 10]
                         [--fixed-docs N] [--executor local|ray] [--ray-cluster] [--json PATH]

Three ``autodata serve-sim`` processes with the GPU capacity model (``--gpu-model``), one per
simulated server, of different sizes: the weak solver on ``llama-8b-1xh100`` (one GPU), the judge
and the quality verifier on ``qwen-32b-2xh100`` (two GPUs), the strong solver and the challenger on
``llama-70b-8xh100`` (eight GPUs). Each variant starts fresh servers (empty prefix caches, counters
at zero) and runs ``autodata run`` in its own process, with a fresh call cache, over the same
documents (about 700 tokens each, distinct).

Figures (all from the servers' ``/metrics`` and the run's own summary):

- **ideal**: the busiest server's work, i.e. prefill of the prompt tokens its prefix cache did not
  hold plus decode of every generated token at its peak (full-batch) throughput
  (``serve_sim:work_seconds_total``), in wall seconds (x the time scale). No schedule beats it.
- **time/ideal**: the run's wall time (its session record: first document in to last example
  written) over the ideal. Goal <= 1.10.
- **busy**: each server's share of the run's wall time with a batch on the GPU
  (``serve_sim:busy_seconds_total``); the last line's B is the busiest server's. Goal >= 0.90.
- **util**: each server's work / wall: how close to its peak it ran (a batch of 1 is busy but slow).
- **start-up** and **active**: from the run's call log, session start to the first request sent (on
  Ray: the instance and its workers starting), and first request sent to last answer back, with
  active/ideal: how well the servers were kept busy once requests flowed.
- prefix-cache hit rate per server (``vllm:prefix_cache_hits_total / vllm:prefix_cache_queries_total``),
  prefill tokens, calls and tokens per accepted example.

Variants: ``auto`` (``loop.concurrency: auto``), ``fixed8`` (``loop.concurrency: 8``, the old
default), ``sequential`` (one document at a time and one request at a time per endpoint: the
paper's agent workflow run naively; run on ``--seq-docs`` documents and its time extrapolated
linearly to ``--docs``, which is exact for a sequential loop up to the documents' variance).
``--adaptive`` adds ``auto`` with ``loop.adaptive_stopping: true``; ``--n`` adds ``auto`` with
``supports_n: true`` on the solver endpoints. ``--executor ray`` runs every variant on 2 Ray workers
(budgets split between them), in a loopback-only network namespace as ``bench/e2e.py`` does; the run
starts its own Ray instance (its start-up is in the wall time) unless ``--ray-cluster``, where each
variant joins a ``ray start --head`` instance started before it (as on a cluster kept running).

The client and the three servers share this machine's cores, so the time scale must leave the
client enough wall time per call (on a loaded machine a scale of 0.1 starved the client: the servers
ran 5 of 16 sequences): ``--quick`` (80 documents, batches of 16, time scale 0.5; ``fixed8`` on 16
documents and ``sequential`` on 2, extrapolated) finishes in about 3 minutes on 2 cores. The last
line reads ``time/ideal R  busy B`` for ``auto``.
"""

from __future__ import annotations

import argparse
import contextlib
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
    servers = {}
    try:
        for name, preset in SERVERS.items():
            extra = ["--time-scale", f"{scale:g}"]
            if max_batch:
                spec = tmp / f"{name}.yaml"
                spec.write_text(yaml.safe_dump({"base": preset, "max_batch": max_batch}))
                extra += ["--gpu-config", str(spec)]
            else:
                extra += ["--gpu-model", preset]
            servers[name] = SimServer(0, extra=extra)
    except BaseException:
        for s in servers.values():
            s.stop()
        raise
    return servers


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


def one(args: argparse.Namespace, variant: str, docs_n: int, tmp: Path) -> dict:
    docs = tmp / f"docs-{variant}.jsonl"
    write_docs(docs, docs_n)
    servers = start_servers(tmp, args.time_scale, args.max_batch)
    try:
        urls = {name: s.url for name, s in servers.items()}
        batch = {name: int(metrics(s)["serve_sim:max_batch"]) for name, s in servers.items()}
        cfg = tmp / f"cfg-{variant}.yaml"
        cfg.write_text(yaml.safe_dump(config(urls, docs, batch, variant, args.headroom, args.executor)))
        out = tmp / f"run-{variant}"
        samples: dict[str, list[tuple[float, float]]] = {name: [] for name in servers}
        stop = threading.Event()

        def poll() -> None:  # running and waiting at each server, twice a second
            while not stop.wait(0.5):
                for name, s in servers.items():
                    try:
                        x = metrics(s)
                    except OSError:
                        continue
                    samples[name].append((x["vllm:num_requests_running"], x["vllm:num_requests_waiting"]))

        poller = threading.Thread(target=poll, daemon=True)
        started = time.perf_counter()
        poller.start()
        try:
            with contextlib.ExitStack() as stack:
                env, extra = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}, []
                if args.executor == "ray" and args.ray_cluster:
                    from e2e import ray_cluster

                    address, env = stack.enter_context(ray_cluster())
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
    wall = summary["wall_s"]
    # from the run's call log: session start to the first request sent (a Ray instance and its workers
    # starting, imports), and the active phase, first request sent to last answer back
    db = sqlite3.connect(str(out / "run.db"))
    try:
        (started,) = db.execute("SELECT MIN(started) FROM sessions").fetchone()
        first, last = db.execute("SELECT MIN(at - latency_s), MAX(at) FROM calls WHERE cache_hit = 0").fetchone()
    finally:
        db.close()
    scale = args.time_scale
    per = {}
    for name, x in m.items():
        per[name] = {
            "work_s": x["serve_sim:work_seconds_total"] * scale,
            "busy": x["serve_sim:busy_seconds_total"] * scale / wall,
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
        "process_s": process,
        "ideal_s": ideal,
        "ratio": wall / ideal,
        "busiest": busiest,
        "servers": per,
        "calls": summary["calls"],
        "calls_per_accepted": summary["calls"] / max(1, accepted),
        "tokens_per_accepted": tokens / max(1, accepted),
        "prefill_per_accepted": sum(p["prefill_tokens"] for p in per.values()) / max(1, accepted),
        "startup_s": first - started,
        "active_s": last - first,
        "active_ratio": (last - first) / ideal,
    }


def _mean(xs: list[float]) -> float:
    return sum(xs) / len(xs) if xs else 0.0


def show(r: dict, scale_to: int | None = None) -> None:
    extra = ""
    if scale_to and scale_to != r["docs"]:
        f = scale_to / r["docs"]
        extra = f"  (extrapolated to {scale_to} documents: wall {r['wall_s'] * f:.1f} s)"
    print(f"\n{r['variant']}: {r['docs']} documents, {r['accepted']} accepted, {r['failed']} failed; wall "
          f"{r['wall_s']:.2f} s (process {r['process_s']:.2f} s); ideal {r['ideal_s']:.2f} s ({r['busiest']}); "
          f"time/ideal {r['ratio']:.3f}{extra}")  # fmt: skip
    print(f"  start-up {r['startup_s']:.1f} s (session start to the first request), active {r['active_s']:.1f} s "
          f"(first request to last answer): active/ideal {r['active_ratio']:.3f}")  # fmt: skip
    print(f"  per accepted example: {r['calls_per_accepted']:.1f} calls, {r['tokens_per_accepted']:.0f} tokens, "
          f"{r['prefill_per_accepted']:.0f} prefill tokens (after prefix-cache hits)")  # fmt: skip
    print("  server   busy   util  work s  requests  prompt tok  prefill tok  gen tok  hit rate  batch  running "
          " full  waiting")  # fmt: skip
    for name, p in r["servers"].items():
        print(f"  {name:<7} {p['busy']:5.2f}  {p['util']:5.2f}  {p['work_s']:6.2f}  {p['requests']:8.0f}  "
              f"{p['prompt_tokens']:10.0f}  {p['prefill_tokens']:11.0f}  {p['generation_tokens']:7.0f}  "
              f"{p['hit_rate']:8.3f}  {p['batch']:5d}  {p['mean_running']:7.1f}  {p['full_share']:4.2f}  "
              f"{p['mean_waiting']:7.1f}")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="80 documents, batches of 16, time scale 0.5")
    ap.add_argument("--docs", type=int, default=1000)
    ap.add_argument("--time-scale", type=float, default=0.1, help="wall seconds per simulated second")
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
        "--ray-cluster", action="store_true", help="ray: join a `ray start --head` instance started before each run"
    )
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    if args.executor == "ray" and os.environ.get("AUTODATA_BENCH_NETNS") != "1":
        from e2e import in_namespaces

        in_namespaces()  # Ray's servers bind every interface: run in a loopback-only namespace
    if args.quick:
        args.docs, args.max_batch, args.time_scale = 80, args.max_batch or 16, 0.5
        args.seq_docs, args.fixed_docs = 1, args.fixed_docs or 12
    variants = [v for v in args.variants.split(",") if v]
    if args.adaptive:
        variants.append("adaptive")
    if args.n:
        variants.append("n")
    print(f"{args.docs} documents; servers: " + ", ".join(f"{k} {v}" for k, v in SERVERS.items())
          + f"; max batch {args.max_batch or 'preset'}; max_concurrency = batch x {args.headroom:g}; "
          f"time scale {args.time_scale:g}; executor {args.executor}")  # fmt: skip
    results = []
    with tempfile.TemporaryDirectory() as t:
        for v in variants:
            n = {"sequential": args.seq_docs, "fixed8": args.fixed_docs or args.docs}.get(v, args.docs)
            r = one(args, v, n, Path(t))
            results.append(r)
            show(r, args.docs)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    auto = next((r for r in results if r["variant"] == "auto"), results[0])
    per_doc_ideal = auto["ideal_s"] / auto["docs"]
    print(f"\nside by side on {args.docs} documents (ideal {per_doc_ideal * args.docs:.1f} s, from auto's servers):")
    for r in results:
        wall = r["wall_s"] * args.docs / r["docs"]
        how = "measured" if r["docs"] == args.docs else f"extrapolated from {r['docs']} documents"
        ratio = wall / (per_doc_ideal * args.docs)
        print(f"  {r['variant']:<10} wall {wall:8.1f} s  time/ideal {ratio:6.2f}  calls/accepted "
              f"{r['calls_per_accepted']:5.1f}  tokens/accepted {r['tokens_per_accepted']:6.0f}  ({how})")  # fmt: skip
    print(f"time/ideal {auto['ratio']:.2f}  busy {auto['servers'][auto['busiest']]['busy']:.2f}")


if __name__ == "__main__":
    main()
