"""Ray scenarios for tests/test_ray.py, each run in its own process inside a network namespace that
has only a loopback interface (Ray's servers bind every interface; there, that is 127.0.0.1 only).

    python tests/ray_scenarios.py SCENARIO OUT_DIR

Prints one JSON line with what the test checks besides the output files.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
ROOT = Path(__file__).resolve().parents[1]


def cfg(*overrides: str):
    from autodata.config import load_config

    return load_config(
        ROOT / "examples" / "quickstart.yaml", [f"documents.paths=[{ROOT / 'examples/corpus/papers'}]", *overrides]
    )


def same_outputs(out: Path) -> dict:
    import ray

    from autodata.executors import make_executor
    from autodata.loop.run import run

    c = cfg("executor.kind=ray", "executor.workers=2")
    summary = asyncio.run(run(c, out, limit=8, use_cache=False, executor=make_executor(c, use_cache=False)))
    return {"calls": summary["calls"], "usage_by_role": summary["usage_by_role"], "ray_left_up": ray.is_initialized()}


def worker_dies(out: Path) -> dict:
    from autodata.executors.ray_pool import RayExecutor
    from autodata.loop.run import run

    c = cfg(
        "executor.kind=ray",
        "executor.workers=2",
        "loop.concurrency=4",
        "models.weak.simulation.latency_ms=80",
        "models.strong.simulation.latency_ms=80",
    )
    ex = RayExecutor(c, use_cache=False)
    killed: dict = {}

    async def killer() -> None:
        while not ex.workers:
            await asyncio.sleep(0.05)
        pid = await ex.workers[0].pid.remote()
        while ex.busy[0] < 2:  # documents are in flight on this worker
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.3)
        os.kill(pid, signal.SIGKILL)
        killed["pid"] = pid

    async def go() -> dict:
        k = asyncio.create_task(killer())
        summary = await run(c, out, limit=8, use_cache=False, executor=ex)
        await k
        return summary

    summary = asyncio.run(go())
    return {"killed": killed.get("pid"), "documents": summary["documents"]}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cluster(out: Path) -> dict:
    ray_bin = str(Path(sys.executable).with_name("ray"))
    port = _free_port()
    tmp = tempfile.mkdtemp(prefix="rt", dir="/tmp")  # short: Ray's unix sockets live under it
    start = [ray_bin, "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}", "--num-cpus=2",
             "--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={tmp}"]  # fmt: skip
    # token authentication, with a token of this test's own (nothing read from or written to ~/.ray)
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    subprocess.run(start, check=True, capture_output=True, timeout=120, env=env)
    try:
        res = subprocess.run(
            [sys.executable, "-m", "autodata", "run", "examples/quickstart.yaml", "--out", str(out), "--limit", "8",
             "-q", "--no-cache", "--ray-address", f"127.0.0.1:{port}", "--set", "executor.workers=2",
             "--set", f"documents.paths=[{ROOT / 'examples/corpus/papers'}]"],
            cwd=ROOT, capture_output=True, text=True, timeout=300, env=env,
        )  # fmt: skip
        listening = subprocess.run(["ss", "-ltnH"], capture_output=True, text=True).stdout
        return {"returncode": res.returncode, "stderr": res.stderr[-2000:], "listening": listening}
    finally:
        subprocess.run([ray_bin, "stop", "--force"], capture_output=True, timeout=120, env=env)


def unreachable(out: Path) -> dict:
    res = subprocess.run(
        [sys.executable, "-m", "autodata", "run", "examples/quickstart.yaml", "--out", str(out), "--limit", "1",
         "-q", "--ray-address", f"127.0.0.1:{_free_port()}"],
        cwd=ROOT, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    return {"returncode": res.returncode, "stderr": res.stderr[-2000:]}


if __name__ == "__main__":
    name, out = sys.argv[1], Path(sys.argv[2])
    result = {"same_outputs": same_outputs, "worker_dies": worker_dies, "cluster": cluster, "unreachable": unreachable}[
        name
    ](out)
    print(json.dumps(result))
