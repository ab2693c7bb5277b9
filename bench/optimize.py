"""The outer loop on the simulated ladder: baseline vs best pass rate, iterations kept, cost.

    python bench/optimize.py [--iterations N] [--adversary]

Runs `examples/optimize.yaml` with a cold cache of its own and prints one table. Simulated models
cost nothing, so cost per iteration is shown in calls and tokens. With --adversary the implementer
is the adversarial simulated model, and the table shows how many attempts were blocked.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path

from autodata.config import load_config
from autodata.meta.optimizer import Optimizer

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--iterations", type=int, default=12)
    ap.add_argument("--adversary", action="store_true")
    args = ap.parse_args()
    os.chdir(ROOT)
    overrides = [f"optimize.iterations={args.iterations}"]
    if args.adversary:
        overrides += ["models.adversary={provider: simulated, model: sim-adversary}", "roles.implementer=adversary"]
    with tempfile.TemporaryDirectory() as tmp:
        cfg = load_config(ROOT / "examples" / "optimize.yaml", [*overrides, f"cache.path={tmp}/cache.sqlite"])
        opt = Optimizer(cfg, Path(tmp) / "run")
        started = time.perf_counter()
        s = asyncio.run(opt.run())
        wall = time.perf_counter() - started
        calls = sum(rt.meter.totals.calls for rt in opt._runtimes.values())
    n = max(1, s["iterations_run"])
    print(f"simulated ladder; examples/optimize.yaml; {s['splits']} documents; {cfg.optimize.repeats} repeats")
    print(f"{'':<22}{'validation':>12}{'test':>8}")
    for name in ("baseline", "best"):
        row = s[name]
        print(f"{name:<22}{100 * row['val_pass_rate']:>11.1f}%{100 * row.get('test_pass_rate', 0):>7.1f}%")
    print(
        f"iterations kept / run: {s['iterations_accepted']} / {s['iterations_run']}; "
        f"hacking attempts blocked: {s['hacking_attempts_blocked']}; canary checks: {len(s['canary']['checks'])}; "
        f"stopped: {s['stopped']}"
    )
    print(
        f"cost per iteration: {calls / n:.0f} calls, {s['tokens'] / n:,.0f} tokens, "
        f"${s['cost_per_iteration_usd']:.4f}; wall {wall:.1f} s"
    )


if __name__ == "__main__":
    main()
