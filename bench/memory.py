"""Peak memory of `autodata run` against the number of documents (simulated ladder, zero latency).

    python bench/memory.py [--sizes 1000 10000 100000] [--executor local|ray]

Writes N small, distinct documents to a JSONL file, runs the inner loop over them in a fresh
process (one round, one weak and one strong attempt, no final pass, cache off, so the figure is
the loop's own footprint, not the cache's), and prints the child's peak RSS (``wait4``'s
ru_maxrss) with wall time. Goal: flat growth, at most 400 MB at 100,000 documents.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
WORDS = [
    "gradient",
    "tensor",
    "kernel",
    "lattice",
    "entropy",
    "protocol",
    "latency",
    "sampler",
    "estimator",
    "residual",
    "manifold",
    "scheduler",
    "bandwidth",
    "quantile",
    "posterior",
    "variance",
    "encoder",
    "decoder",
    "allocator",
    "throughput",
]


def write_docs(path: Path, n: int) -> None:
    rng = random.Random(n)
    with path.open("w") as fh:
        for i in range(n):
            body = " ".join(rng.choice(WORDS) for _ in range(60))
            fh.write(json.dumps({"id": f"d{i}", "title": f"Document {i}", "text": f"Study {i}. {body}."}) + "\n")


def config(docs: Path, executor: str, concurrency: int | str = "auto") -> dict:
    data = yaml.safe_load((ROOT / "examples" / "quickstart.yaml").read_text())
    data["documents"] = {"paths": [str(docs)], "min_chars": 50}
    data["loop"].update(max_rounds=1, k_weak=1, k_strong=1, final_quality_check=False, concurrency=concurrency)
    data["cache"] = {"enabled": False}
    data["executor"] = {"kind": executor, "workers": 2}
    return data


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    ap.add_argument("--executor", default="local", choices=["local", "ray"])
    ap.add_argument("--concurrency", default="auto", help="loop.concurrency: auto (default) or a number")
    args = ap.parse_args()
    conc = args.concurrency if args.concurrency == "auto" else int(args.concurrency)
    print(f"{'documents':>10}{'peak RSS MB':>13}{'wall s':>9}{'docs/s':>8}  (executor {args.executor}, "
          f"loop.concurrency {args.concurrency})")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        for n in args.sizes:
            docs = t / f"docs-{n}.jsonl"
            write_docs(docs, n)
            cfg_path = t / f"cfg-{n}.yaml"
            cfg_path.write_text(yaml.safe_dump(config(docs, args.executor, conc)))
            started = time.perf_counter()
            proc = subprocess.Popen(
                [sys.executable, "-m", "autodata", "run", str(cfg_path), "--out", str(t / f"run-{n}"), "-q"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"},
            )
            _, status, usage = os.wait4(proc.pid, 0)
            wall = time.perf_counter() - started
            if os.waitstatus_to_exitcode(status) not in (0, 1):  # 1: some documents failed for this session
                print(proc.stderr.read().decode()[-2000:] if proc.stderr else "", file=sys.stderr)
                raise SystemExit(f"run over {n} documents failed")
            done = json.loads((t / f"run-{n}" / "summary.json").read_text())["documents"]
            assert done["accepted"] + done["exhausted"] + done["failed_this_session"] == n, done
            print(f"{n:>10}{usage.ru_maxrss / 1024:>13.1f}{wall:>9.1f}{n / wall:>8.0f}")


if __name__ == "__main__":
    main()
