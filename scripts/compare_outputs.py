"""Run example configs with two source trees and compare what they write, in substance.

    python scripts/compare_outputs.py BEFORE_SRC AFTER_SRC [--out DIR] [--limit N] [CONFIG ...]

BEFORE_SRC / AFTER_SRC are ``src`` folders of two checkouts (``git archive`` one into a temporary
folder). Each config runs with each tree in its own directory and with its own cold call cache (same
seed, simulated models), then exports ``jsonl``, ``rl`` and ``sft``. Compared:

- ``examples.jsonl``: every example's keys and values, ``created_at`` left out, keys the AFTER tree
  added reported (not counted as a difference);
- ``episodes.jsonl``: equal as parsed JSON;
- the exports: equal row by row, ``created_at`` left out.

Prints one line per config and output, and exits 1 when anything differs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

CONFIGS = ["examples/quickstart.yaml", "examples/verifiable.yaml", "examples/legal.yaml", "examples/agent.yaml"]
IGNORED = {"created_at"}


def run(src: Path, config: str, out: Path, limit: int) -> None:
    env = {**os.environ, "PYTHONPATH": str(src), "AUTODATA_CACHE_DIR": str(out.parent / f"{out.name}.cache")}
    cmd = [sys.executable, "-m", "autodata", "run", config, "--out", str(out), "--limit", str(limit), "-q"]
    subprocess.run(cmd, check=True, env=env, capture_output=True, text=True)
    for fmt, name in (("jsonl", "x.jsonl"), ("rl", "rl.jsonl"), ("sft", "sft.jsonl")):
        target = str(out / "export" / name)
        cmd = [sys.executable, "-m", "autodata", "export", str(out), "--format", fmt, "--out", target]
        subprocess.run(cmd, check=True, env=env, capture_output=True, text=True)


def rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def strip(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in IGNORED}


def compare(before: Path, after: Path) -> list[str]:
    lines, differs = [], False
    a, b = rows(before / "examples.jsonl"), rows(after / "examples.jsonl")
    added = sorted({k for r in b for k in r} - {k for r in a for k in r})
    same = len(a) == len(b) and all(
        strip(x) == {k: v for k, v in strip(y).items() if k not in added} for x, y in zip(a, b, strict=True)
    )
    differs |= not same
    lines.append(
        f"examples.jsonl: {len(a)} vs {len(b)} examples, {'same' if same else 'DIFFERENT'}"
        + (f" (new keys: {', '.join(added)})" if added else "")
    )
    same = rows(before / "episodes.jsonl") == rows(after / "episodes.jsonl")
    differs |= not same
    lines.append(f"episodes.jsonl: {'same' if same else 'DIFFERENT'}")
    for name in ("x.jsonl", "rl.jsonl", "sft.jsonl"):
        ra, rb = rows(before / "export" / name), rows(after / "export" / name)
        same = [strip(r) for r in ra] == [strip(r) for r in rb]
        differs |= not same
        lines.append(f"export {name}: {len(ra)} vs {len(rb)} rows, {'same' if same else 'DIFFERENT'}")
    return lines if not differs else [*lines, "DIFFERENT"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("before", type=Path)
    ap.add_argument("after", type=Path)
    ap.add_argument("configs", nargs="*", default=CONFIGS)
    ap.add_argument("--out", type=Path, default=Path("runs/compare"))
    ap.add_argument("--limit", type=int, default=8)
    args = ap.parse_args()
    bad = False
    for config in args.configs:
        name = Path(config).stem
        dirs = {}
        for label, src in (("before", args.before), ("after", args.after)):
            dirs[label] = args.out / f"{name}-{label}"
            run(src.resolve(), config, dirs[label], args.limit)
        result = compare(dirs["before"], dirs["after"])
        bad |= result[-1] == "DIFFERENT"
        for line in result:
            if line != "DIFFERENT":
                print(f"{name}: {line}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
