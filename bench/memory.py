"""Peak memory of `autodata run` against the number of documents (simulated ladder, zero latency).

    python bench/memory.py [--sizes 1000 10000 100000] [--executor local|ray] [--concurrency auto|N] [--replay]

Writes N small, distinct documents to a JSONL file, runs the inner loop over them in a fresh
process (one round, one weak and one strong attempt, no final pass, cache off, so the figure is
the loop's own footprint, not the cache's), and prints the child's peak RSS (``wait4``'s
ru_maxrss) with wall time. Goal: flat growth, at most 400 MB at 100,000 documents.

``--replay``: the models' answers are the simulated ladder's, computed once per (model, response
schema) and replayed for every later request of that kind, so every document takes the first one's
path. About two thirds of a call's CPU time went to the ladder reading its prompts and writing its
answers; without it 100,000 documents took 12 minutes on a loaded 2-core machine. Everything else is the real
``autodata run``: the CLI, streaming the corpus, admission (``loop.concurrency: auto`` by the
endpoints' windows), the episodes with their prompts, parsing and validation, the runtime's windows
and meter, the run store and the outputs written from it.
"""

from __future__ import annotations

import argparse
import copy
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


class ReplayBackend:
    """The ladder's answer to the first request of each (model, response schema title), replayed after."""

    def __init__(self, ladder: object, label: str) -> None:
        self.ladder, self.label = ladder, label
        self.seen: dict[tuple[str, str], dict] = {}

    async def send(self, body: dict):
        from autodata.llm.backends import Reply
        from autodata.sim.contracts import response_schema, schema_title

        schema = response_schema(body, body["messages"])
        key = (body["model"], (schema_title(schema) if schema else None) or "text", body.get("n") or 1)
        if key not in self.seen:
            status, payload = self.ladder.respond(body)
            if status != 200:
                raise RuntimeError(f"the ladder answered {status}: {payload}")
            self.seen[key] = payload
        return Reply(data=copy.deepcopy(self.seen[key]), headers={"x-autodata-simulated": "true"})

    async def aclose(self) -> None:
        return None


class ReplayProvider:
    """``provider: simulated`` for this benchmark's child process with ``--replay`` (registered in its place)."""

    def check(self, ep):
        from autodata.sim.ladder import LADDER

        return None if ep.model in LADDER else f"{ep.model!r} is not a simulated model"

    def backends(self, ep, global_seed):
        from autodata.sim.ladder import SimulatedLadder

        return [ReplayBackend(SimulatedLadder(global_seed=global_seed, fault_rate=0.0), f"replay:{ep.model}")]

    def namespace(self, ep, global_seed):
        return f"replay|seed={global_seed}"


REPLAY = ReplayProvider()
CHILD = (
    "import sys; sys.path.insert(0, {bench!r}); from autodata.llm.providers import register_provider; "
    "register_provider('simulated', 'memory:REPLAY'); from autodata.cli import main; sys.argv[0] = 'autodata'; main()"
)


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
    ap.add_argument("--replay", action="store_true", help="replay the ladder's first answer per role (fast)")
    args = ap.parse_args()
    conc = args.concurrency if args.concurrency == "auto" else int(args.concurrency)
    print(f"{'documents':>10}{'peak RSS MB':>13}{'wall s':>9}{'docs/s':>8}  (executor {args.executor}, "
          f"loop.concurrency {args.concurrency}{', answers replayed' if args.replay else ''})")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        for n in args.sizes:
            docs = t / f"docs-{n}.jsonl"
            write_docs(docs, n)
            cfg_path = t / f"cfg-{n}.yaml"
            cfg_path.write_text(yaml.safe_dump(config(docs, args.executor, conc)))
            started = time.perf_counter()
            bench = str(Path(__file__).resolve().parent)
            head = ["-c", CHILD.format(bench=bench)] if args.replay else ["-m", "autodata"]
            proc = subprocess.Popen(
                [sys.executable, *head, "run", str(cfg_path), "--out", str(t / f"run-{n}"), "-q"],
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
