"""Batch completion against the peers: autodata's runtime, a plain openai loop, Curator, distilabel.

    python bench/peers.py --peers-python /path/to/peers-venv/bin/python [--n 2000] [--concurrency 64]
                          [--latency-ms 50] [--repeats 3]

The same N distinct short prompts go to the same `autodata serve-sim` (latency L) with at most C
requests in flight, each variant in a fresh process; the child times only the generation (imports
excluded) and reports wall, CPU time and peak RSS. Curator (`bespokelabs-curator`) and distilabel
live in a separate environment (`--peers-python`), with their telemetry, hub access and caches off.
Medians of the repeats are printed with ratios to the ideal N·L/C and to the plain loop.

How each peer is driven (their documented batch APIs):
- curator: an `LLM` subclass with `backend="openai"`, `base_url`, `max_concurrent_requests=C`;
- distilabel: `OpenAILLM(base_url=…).generate(inputs=…)` over batches of C (its pipelines batch
  the same way, `input_batch_size`), so a batch waits for its slowest request.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from throughput import SimServer

ROOT = Path(__file__).resolve().parents[1]

CHILD = Path(__file__).resolve().with_name("peers_child.py")


def run_child(python: str, variant: str, url: str, n: int, c: int, workdir: Path) -> dict:
    env = {
        **os.environ,
        "TELEMETRY_ENABLED": "false",
        "CURATOR_DISABLE_CACHE": "true",
        "CURATOR_CACHE_DIR": str(workdir / "curator"),
        "CURATOR_DISABLE_RICH_DISPLAY": "1",
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "DISTILABEL_CACHE_DIR": str(workdir / "distilabel"),
        "OPENAI_API_KEY": "x",
    }
    res = subprocess.run(
        [python, str(CHILD), variant, url, str(n), str(c)],
        capture_output=True, text=True, timeout=1800, env=env, cwd=workdir,
    )  # fmt: skip
    line = next((x for x in res.stdout.splitlines() if x.startswith("RESULT ")), None)
    if res.returncode != 0 or line is None:
        raise SystemExit(f"{variant} failed ({res.returncode}):\n{res.stderr[-3000:]}")
    return json.loads(line[len("RESULT ") :])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--peers-python", required=True, help="python of the environment with curator and distilabel")
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--latency-ms", type=float, default=50.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--variants", nargs="+", default=["plain", "autodata", "curator", "distilabel"])
    args = ap.parse_args()
    ideal = args.n * args.latency_ms / 1000 / args.concurrency
    server = SimServer(args.latency_ms)
    results: dict[str, list[dict]] = {v: [] for v in args.variants}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for _ in range(args.repeats):
                for v in args.variants:  # interleaved, so drift in the machine hits every variant alike
                    python = args.peers_python if v in ("curator", "distilabel") else sys.executable
                    results[v].append(run_child(python, v, server.url, args.n, args.concurrency, Path(tmp)))
    finally:
        server.stop()
    med = {
        v: {k: statistics.median(r[k] for r in rs) for k in ("wall", "cpu", "rss_mb", "ok")}
        for v, rs in results.items()
    }
    plain = med.get("plain", {}).get("wall")
    print(f"N={args.n}, C={args.concurrency}, L={args.latency_ms:g} ms, ideal {ideal:.2f} s; medians of {args.repeats}")
    print(
        f"{'variant':<12}{'wall s':>8}{'/ideal':>8}{'/plain':>8}{'CPU s':>8}{'CPU ms/call':>12}"
        f"{'peak RSS MB':>13}{'ok':>7}"
    )
    for v, m in med.items():
        rel = f"{m['wall'] / plain:>8.2f}" if plain else f"{'-':>8}"
        print(
            f"{v:<12}{m['wall']:>8.2f}{m['wall'] / ideal:>8.2f}{rel}{m['cpu']:>8.2f}"
            f"{1000 * m['cpu'] / args.n:>12.2f}{m['rss_mb']:>13.0f}{int(m['ok']):>7}"
        )


if __name__ == "__main__":
    main()
