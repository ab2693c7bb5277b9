"""The inner loop on the simulated ladder: acceptance, rounds, solver calls, weak-first, resume cost.

    python bench/loop.py [--docs examples/corpus] [--limit N] [--rounds R]

Prints one table for the scripted orchestrator (weak-first on and off, resume) and one for the
agent orchestrator and the other profiles, each on its example config. Every run uses its own empty
cache, so calls are real (simulated) model calls;
the resume row re-runs a finished run directory and counts the calls it makes (must be 0).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from autodata.config import validate_config
from autodata.judging.acceptance import Preset, check_weak, decide, preset, strong_settled, weak_settled
from autodata.loop.run import run

ROOT = Path(__file__).resolve().parents[1]


def replay_adaptive(episodes_path: Path, p: Preset, first_wave: int = 2) -> dict[str, int]:
    """Apply the adaptive stopping rule to the attempts a full run recorded, in sample order.

    Same attempts, so the comparison is exact: how many attempts the rule would have drawn, and
    whether its accept/reject decision differs from the full rule's on any round."""
    used = full = rounds = differ = 0

    def drawn(scores: list[float], settled: Callable[[list[float], int], bool]) -> list[float]:
        got, wave = [], min(first_wave, len(scores))
        while len(got) < len(scores):
            got = scores[: len(got) + wave]
            if len(got) < len(scores) and settled(got, len(scores) - len(got)):
                break
            wave = 1
        return got

    for line in episodes_path.read_text().splitlines():
        for r in json.loads(line)["rounds"]:
            weak = [a["score"] for a in r["weak"] if a["score"] is not None]
            if not weak:
                continue
            rounds += 1
            w = drawn(weak, lambda d, left: weak_settled(p, d, left))
            used, full = used + len(w), full + len(weak)
            if check_weak(p, w).accepted != check_weak(p, weak).accepted:
                differ += 1
            strong = [a["score"] for a in (r["strong"] or []) if a["score"] is not None]
            if not strong or not check_weak(p, weak).accepted:
                continue
            wm = sum(weak) / len(weak)
            s = drawn(strong, lambda d, left, wm=wm: strong_settled(p, d, left, wm))
            used, full = used + len(s), full + len(strong)
            a = decide(p, quality_passed=True, weak=weak, strong=s).accepted
            if a != decide(p, quality_passed=True, weak=weak, strong=strong).accepted:
                differ += 1
    return {"rounds": rounds, "attempts_full": full, "attempts_adaptive": used, "decisions_differ": differ}


def config(
    docs: str | None, rounds: int, weak_first: bool, cache: Path, example: str = "quickstart", adaptive: bool = False
) -> object:
    data = yaml.safe_load((ROOT / "examples" / f"{example}.yaml").read_text())
    data["loop"]["adaptive_stopping"] = adaptive
    if docs:
        data["documents"]["paths"] = [docs]
    data["loop"]["max_rounds"] = rounds
    data["loop"]["weak_first"] = weak_first
    data["cache"] = {"path": str(cache)}
    return validate_config(data)


async def one(cfg: object, out: Path, limit: int | None) -> tuple[dict, float]:
    started = time.perf_counter()
    summary = await run(cfg, out, limit=limit)  # type: ignore[arg-type]
    return summary, time.perf_counter() - started


def row(name: str, s: dict, wall: float) -> str:
    roles = s["usage_by_role"]
    solver = sum(roles.get(r, {}).get("calls", 0) for r in ("weak_solver", "strong_solver"))
    judge = sum(roles.get(r, {}).get("calls", 0) for r in ("judge", "loop_judge"))
    acc = s["documents"]["accepted"]
    per = (lambda x, w=12: f"{x / acc:{w}.1f}") if acc else (lambda x, w=12: f"{'-':>{w}}")
    return (
        f"{name:<22}{s['documents']['total']:>6}{acc:>9}{100 * s['acceptance_rate']:>8.0f}%"
        f"{s['rounds'] / max(1, s['documents']['total']):>12.2f}{per(solver)}{per(judge, 11)}{s['calls']:>8}"
        f"{wall:>8.2f}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--docs", default=str(ROOT / "examples" / "corpus"))
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    os.chdir(ROOT)
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        print(f"simulated ladder; documents: {args.docs}; round budget {args.rounds}; preset deployed; k=3/3")
        print(
            f"{'variant':<22}{'docs':>6}{'accepted':>9}{'rate':>9}{'rounds/doc':>12}"
            f"{'solver/acc':>12}{'judge/acc':>11}{'calls':>8}{'wall s':>8}"
        )
        results = {}
        for name, weak_first in (("weak-first on", True), ("weak-first off", False)):
            cfg = config(args.docs, args.rounds, weak_first, t / f"{name}.sqlite")
            summary, wall = asyncio.run(one(cfg, t / name, args.limit))
            results[name] = summary
            print(row(name, summary, wall))
        cfg = config(args.docs, args.rounds, True, t / "weak-first on.sqlite")
        summary, wall = asyncio.run(one(cfg, t / "weak-first on", args.limit))
        last = summary  # the resumed run's summary covers both sessions; count this session's calls
        db = sqlite3.connect(str(t / "weak-first on" / "run.db"))
        session_calls = json.loads(db.execute("SELECT usage FROM sessions ORDER BY rowid DESC LIMIT 1").fetchone()[0])
        print(
            f"{'resume (finished run)':<22}{last['documents']['total']:>6}{'':>9}{'':>9}{'':>12}{'':>12}{'':>11}"
            f"{session_calls['total']['calls']:>8}{wall:>8.2f}"
        )
        on, off = results["weak-first on"], results["weak-first off"]

        def solver_calls(s: dict) -> int:
            return sum(s["usage_by_role"].get(r, {}).get("calls", 0) for r in ("weak_solver", "strong_solver"))

        saved = 1 - solver_calls(on) / max(1, solver_calls(off))
        print(
            f"weak-first saves {100 * saved:.0f}% of solver calls "
            f"({solver_calls(on)} vs {solver_calls(off)}); resume of a finished run made "
            f"{session_calls['total']['calls']} calls (goal: 0)"
        )
        rep = replay_adaptive(t / "weak-first on" / "episodes.jsonl", preset("deployed"))
        saved_attempts = rep["attempts_full"] - rep["attempts_adaptive"]
        print(
            f"adaptive stopping, replayed on the weak-first run's {rep['rounds']} evaluated rounds: "
            f"{rep['attempts_adaptive']} of {rep['attempts_full']} attempts drawn ({saved_attempts} solver and "
            f"{saved_attempts} judge calls saved, {100 * saved_attempts / max(1, rep['attempts_full']):.0f}%); "
            f"decisions that differ from the full rule: {rep['decisions_differ']}"
        )
        cfg = config(args.docs, args.rounds, True, t / "adaptive.sqlite", adaptive=True)
        summary, wall = asyncio.run(one(cfg, t / "adaptive", args.limit))
        print(row("weak-first + adaptive", summary, wall))
        print()
        print("other orchestrator and profiles, each on its example config and documents (judge/acc counts loop judge)")
        for example, docs in (("agent", args.docs), ("verifiable", args.docs), ("legal", None)):
            cfg = config(docs, args.rounds, True, t / f"{example}.sqlite", example)
            summary, wall = asyncio.run(one(cfg, t / example, args.limit))
            print(row(example, summary, wall))
            if example == "agent":
                orch = summary["usage_by_role"].get("orchestrator", {}).get("calls", 0)
                per_acc = orch / max(1, summary["documents"]["accepted"])
                print(f"{'  orchestrator calls per accepted example':<44}{per_acc:.1f}")


if __name__ == "__main__":
    main()
