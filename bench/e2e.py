"""End to end: the inner loop through `serve-sim` over HTTP, wall time against the ideal.

    python bench/e2e.py [--docs 1000] [--latency-ms 50] [--concurrency 8] [--executor local|ray]
                        [--ray-cluster] [--http-transport aiohttp|httpx|direct]
                        [--no-cache] [--repeats 3]

Every role talks HTTP to one `autodata serve-sim` (latency L per request) through its own endpoint
with at most C requests in flight; enough documents are in flight (8 C) that the endpoints, not
the loop's dependencies, are the limit. The ideal wall time is the busiest endpoint's calls·L/C:
no schedule can beat it. The default workload (1,000 documents, about 33,000 calls, 106 s ideal at
C = 8) is long enough that fixed start-up costs (Ray's above all) weigh as they do in real runs.
Prints calls per endpoint, wall, ideal and their ratio (goal ≤ 1.10), and splits the wall into
start-up (to the first request) and the stretch from the first request to the last answer.

With ``--executor ray`` the run starts its own local Ray instance (about 2.7 s to start and 1.4 s to
stop on 2 cores, inside the run's wall); ``--ray-cluster`` instead starts a ``ray start --head``
instance on 127.0.0.1 before the clock starts and joins it through ``executor.address``, as a run
on a team's running cluster does. Ray rows run in their own network namespace (loopback only) and
PID namespace, re-executing this script under ``unshare``. The call cache is on (a fresh file:
every call is a miss and a write), as in a user's run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shlex
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from throughput import SimServer

ROOT = Path(__file__).resolve().parents[1]
MODELS = {"weak": "sim-weak", "strong": "sim-strong", "judge": "sim-judge", "challenger": "sim-challenger"}


def config(
    url: str, docs: Path, concurrency: int, executor: str, workers: int, transport: str = "aiohttp", cache: bool = True
) -> dict:
    data = yaml.safe_load((ROOT / "examples" / "quickstart.yaml").read_text())
    data["documents"] = {"paths": [str(docs)], "min_chars": 50}
    data["loop"]["concurrency"] = 8 * concurrency
    data["cache"] = {"enabled": cache, "path": str(docs.parent / "cache.db")}  # fresh: every call a miss + write
    data["models"] = {
        name: {"provider": "openai", "model": model, "base_url": url, "max_concurrency": concurrency,
               "min_concurrency": concurrency, "sampling": {"temperature": 0} if name == "judge" else {},
               "http_transport": transport}
        for name, model in MODELS.items()
    }  # fmt: skip
    data["executor"] = {"kind": executor, "workers": workers}
    return data


@contextlib.contextmanager
def ray_cluster():
    """A ``ray start --head`` instance on 127.0.0.1 for the length of the block; yields (address, env)."""
    ray_bin = str(Path(sys.executable).with_name("ray"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    tmp = tempfile.mkdtemp(prefix="rb", dir="/tmp")  # short: Ray's unix sockets live under it
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32),
           "RAY_USAGE_STATS_ENABLED": "0"}  # fmt: skip
    start = [ray_bin, "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}", "--num-cpus=2",
             "--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={tmp}"]  # fmt: skip
    subprocess.run(start, check=True, capture_output=True, timeout=120, env=env)
    try:
        yield f"127.0.0.1:{port}", env
    finally:
        subprocess.run([ray_bin, "stop", "--force"], capture_output=True, timeout=120, env=env)


def in_namespaces() -> None:
    """Re-run this script in its own network namespace (loopback only) and PID namespace.

    Ray's servers bind every interface, and ``ray stop --force`` stops every Ray process it can see:
    inside the namespaces neither reaches beyond this benchmark. serve-sim runs inside as well.
    """
    for prefix in (["unshare", "-n", "-p", "-f", "--mount-proc"], ["unshare", "-rn", "-p", "-f", "--mount-proc"]):
        if shutil.which("unshare") and subprocess.run([*prefix, "true"], capture_output=True).returncode == 0:
            script = "ip link set lo up && exec " + " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv])
            env = {**os.environ, "AUTODATA_BENCH_NETNS": "1"}
            raise SystemExit(subprocess.run([*prefix, "sh", "-c", script], env=env).returncode)
    raise SystemExit("the Ray rows need network and PID namespaces (unshare -n -p, util-linux and iproute2)")


def once(args: argparse.Namespace, server: SimServer) -> dict:
    """One run in a fresh process; its wall (from the run's own session record) and where it went."""
    from memory import write_docs

    with contextlib.ExitStack() as stack:
        t = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
        extra: list[str] = []
        if args.ray_cluster:
            address, env = stack.enter_context(ray_cluster())
            extra = ["--ray-address", address]
        write_docs(t / "docs.jsonl", args.docs)
        cfg = t / "cfg.yaml"
        cfg.write_text(yaml.safe_dump(config(server.url, t / "docs.jsonl", args.concurrency, args.executor,
                                             args.workers, args.http_transport, not args.no_cache)))  # fmt: skip
        started = time.perf_counter()
        res = subprocess.run(
            [sys.executable, "-m", "autodata", "run", str(cfg), "--out", str(t / "run"), "-q", *extra],
            capture_output=True, text=True, env=env,
        )  # fmt: skip
        process = time.perf_counter() - started
        if res.returncode != 0:
            raise SystemExit(res.stderr[-3000:])
        summary = json.loads((t / "run" / "summary.json").read_text())
        db = sqlite3.connect(t / "run" / "run.db")
        started_at, first, last = db.execute(
            "SELECT (SELECT MIN(started) FROM sessions), MIN(at - latency_s), MAX(at) FROM calls"
        ).fetchone()
        db.close()
    by_endpoint: dict[str, int] = {}
    for role, row in summary["usage_by_role"].items():
        endpoint = {"weak_solver": "weak", "strong_solver": "strong", "challenger": "challenger"}.get(role, "judge")
        by_endpoint[endpoint] = by_endpoint.get(endpoint, 0) + int(row["calls"])
    return {"wall": summary["wall_s"], "process": process, "startup": first - started_at, "calls_span": last - first,
            "by_endpoint": by_endpoint}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=1000, help="the goal's workload (--docs 300 for a quicker look)")
    ap.add_argument("--latency-ms", type=float, default=50.0)
    ap.add_argument("--concurrency", type=int, default=8, help="C per endpoint (8: the most two cores carry)")
    ap.add_argument("--executor", default="local", choices=["local", "ray"])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--http-transport", default="aiohttp", choices=["aiohttp", "httpx", "direct"])
    ap.add_argument("--ray-cluster", action="store_true", help="join a head started beforehand (implies ray)")
    ap.add_argument("--no-cache", action="store_true", help="run without the call cache (on by default, as for users)")
    ap.add_argument("--repeats", type=int, default=1, help="runs in a row; the median is reported")
    args = ap.parse_args()
    if args.ray_cluster:
        args.executor = "ray"
    if args.executor == "ray" and os.environ.get("AUTODATA_BENCH_NETNS") != "1":
        in_namespaces()
    sys.path.insert(0, str(ROOT / "bench"))

    server = SimServer(args.latency_ms)
    try:
        runs = [once(args, server) for _ in range(args.repeats)]
    finally:
        server.stop()
    L, C = args.latency_ms / 1000, args.concurrency
    by_endpoint = runs[0]["by_endpoint"]
    ideal = max(by_endpoint.values()) * L / C
    where = " (joined a running head)" if args.ray_cluster else ""
    print(f"executor {args.executor}{where}; {args.docs} documents; L = {args.latency_ms:g} ms; C = {C} per endpoint; "
          f"http_transport {args.http_transport}; cache {'off' if args.no_cache else 'on'}")  # fmt: skip
    print("calls per endpoint: " + ", ".join(f"{k} {v}" for k, v in sorted(by_endpoint.items())))
    for i, r in enumerate(runs, 1):
        same = "" if r["by_endpoint"] == by_endpoint else "  (calls differ from run 1!)"
        print(f"run {i}: wall {r['wall']:.2f} s (process {r['process']:.2f} s), ratio {r['wall'] / ideal:.3f}; "
              f"start-up to the first request {r['startup']:.2f} s; first request to last answer "
              f"{r['calls_span']:.2f} s (ratio {r['calls_span'] / ideal:.3f}){same}")  # fmt: skip
    med = statistics.median(r["wall"] for r in runs)
    span = statistics.median(r["calls_span"] for r in runs)
    print(f"ideal {ideal:.2f} s; median wall {med:.2f} s: ratio {med / ideal:.3f} (goal <= 1.10); "
          f"median first request to last answer: ratio {span / ideal:.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
