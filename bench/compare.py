"""The paper's Table 1 on the simulated ladder: agentic loop vs the three baselines, same documents and judge.

    python bench/compare.py [--docs examples/corpus] [--limit N] [--out DIR] [--resamples B]

Runs ``autodata run`` and ``autodata baseline`` (self-instruct, grounded, cot-self-instruct) on the
same documents with the quick start's simulated models, each with its own empty call cache, then
prints the comparison (``autodata compare``) as markdown. With ``--out`` the run directories and
compare.md / compare.json are kept.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path

import yaml

from autodata.analysis.compare import compare, markdown, write
from autodata.analysis.runs import load_run
from autodata.baselines.generators import METHODS
from autodata.baselines.run import run_baseline
from autodata.config import validate_config
from autodata.loop.run import run

ROOT = Path(__file__).resolve().parents[1]


def config(docs: str, cache: Path) -> object:
    data = yaml.safe_load((ROOT / "examples" / "quickstart.yaml").read_text())
    data["documents"]["paths"] = [docs]
    data["cache"] = {"path": str(cache)}
    return validate_config(data)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--docs", default=str(ROOT / "examples" / "corpus"))
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--out", default=None, help="keep the runs and compare.md/json here")
    ap.add_argument("--resamples", type=int, default=2000)
    args = ap.parse_args()
    os.chdir(ROOT)
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(args.out) if args.out else Path(tmp)
        base.mkdir(parents=True, exist_ok=True)
        dirs = []
        for name in ("agentic", *METHODS):
            cfg = config(args.docs, Path(tmp) / f"{name}.sqlite")
            started = time.perf_counter()
            if name == "agentic":
                summary = asyncio.run(run(cfg, base / name, limit=args.limit))  # type: ignore[arg-type]
            else:
                summary = asyncio.run(run_baseline(cfg, base / name, name, limit=args.limit))  # type: ignore[arg-type]
            written = summary["outputs"]["examples_written"]
            print(
                f"{name}: {summary['documents']['total']} documents, {written} examples, "
                f"{summary['calls']} calls, {time.perf_counter() - started:.1f} s"
            )
            dirs.append(base / name)
        result = compare([load_run(d) for d in dirs], resamples=args.resamples)
        print()
        print(markdown(result))
        if args.out:
            md, js = write(result, base)
            print(f"wrote {md} and {js}")


if __name__ == "__main__":
    main()
