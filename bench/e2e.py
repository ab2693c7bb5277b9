"""End to end: the inner loop through `serve-sim` over HTTP, wall time against the ideal.

    python bench/e2e.py [--docs 300] [--latency-ms 50] [--concurrency 16] [--executor local|ray]

Every role talks HTTP to one `autodata serve-sim` (latency L per request) through its own endpoint
with at most C requests in flight; enough documents are in flight (8 C) that the endpoints, not
the loop's dependencies, are the limit. The ideal wall time is the busiest endpoint's calls·L/C:
no schedule can beat it. Prints calls per endpoint, wall, ideal and their ratio (goal ≤ 1.10).
"""

from __future__ import annotations

import argparse
import json
import os
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


def config(url: str, docs: Path, concurrency: int, executor: str, workers: int) -> dict:
    data = yaml.safe_load((ROOT / "examples" / "quickstart.yaml").read_text())
    data["documents"] = {"paths": [str(docs)], "min_chars": 50}
    data["loop"]["concurrency"] = 8 * concurrency
    data["cache"] = {"enabled": False}
    data["models"] = {
        name: {"provider": "openai", "model": model, "base_url": url, "max_concurrency": concurrency,
               "min_concurrency": concurrency, "sampling": {"temperature": 0} if name == "judge" else {}}
        for name, model in MODELS.items()
    }  # fmt: skip
    data["executor"] = {"kind": executor, "workers": workers}
    return data


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--docs", type=int, default=300)
    ap.add_argument("--latency-ms", type=float, default=50.0)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--executor", default="local", choices=["local", "ray"])
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT / "bench"))
    from memory import write_docs

    server = SimServer(args.latency_ms)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            t = Path(tmp)
            write_docs(t / "docs.jsonl", args.docs)
            cfg = t / "cfg.yaml"
            cfg.write_text(yaml.safe_dump(config(server.url, t / "docs.jsonl", args.concurrency, args.executor,
                                                 args.workers)))  # fmt: skip
            started = time.perf_counter()
            res = subprocess.run(
                [sys.executable, "-m", "autodata", "run", str(cfg), "--out", str(t / "run"), "-q"],
                capture_output=True, text=True, env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"},
            )  # fmt: skip
            wall = time.perf_counter() - started
            if res.returncode != 0:
                raise SystemExit(res.stderr[-3000:])
            summary = json.loads((t / "run" / "summary.json").read_text())
            sessions = summary["wall_s"]
    finally:
        server.stop()
    by_endpoint: dict[str, int] = {}
    for role, row in summary["usage_by_role"].items():
        endpoint = {"weak_solver": "weak", "strong_solver": "strong", "challenger": "challenger"}.get(role, "judge")
        by_endpoint[endpoint] = by_endpoint.get(endpoint, 0) + int(row["calls"])
    L, C = args.latency_ms / 1000, args.concurrency
    ideal = max(by_endpoint.values()) * L / C
    print(f"executor {args.executor}; {args.docs} documents; L = {args.latency_ms:g} ms; C = {C} per endpoint")
    print("calls per endpoint: " + ", ".join(f"{k} {v}" for k, v in sorted(by_endpoint.items())))
    print(f"run wall {sessions:.2f} s (process {wall:.2f} s); ideal {ideal:.2f} s; ratio {sessions / ideal:.3f}")


if __name__ == "__main__":
    main()
