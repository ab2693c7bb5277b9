"""Ray scenarios for tests/test_ray.py, each run in its own process inside a network namespace that
has only a loopback interface (Ray's servers bind every interface; there, that is 127.0.0.1 only).

    python tests/ray_scenarios.py SCENARIO OUT_DIR

Prints one JSON line with what the test checks besides the output files.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
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


def labels_and_waits(out: Path) -> dict:
    """A run on 2 Ray workers against an OpenAI-compatible server that answers from the simulated ladder
    (``system_fingerprint: autodata-simulated``, as ``serve-sim`` does) and asks for a 1.2 s pause
    (429 with ``Retry-After``) on its first request: what reaches the driver from the workers."""
    import yaml

    sys.path.insert(0, str(ROOT / "tests"))
    from autodata.config import validate_config
    from autodata.executors.ray_pool import RayExecutor
    from autodata.loop.run import run
    from faultserver import FaultServer, rate_limited

    async def go() -> dict:
        srv = await FaultServer(plan=lambda a: rate_limited(1.2) if a.index == 0 else None).start()
        try:
            data = yaml.safe_load((ROOT / "examples" / "quickstart.yaml").read_text())
            data["documents"]["paths"] = [str(ROOT / "examples/corpus/papers")]
            for ep in data["models"].values():
                ep.update(provider="openai", base_url=srv.url, max_retries=3, backoff_base_s=0.01)
            data["executor"] = {"kind": "ray", "workers": 2}
            c = validate_config(data)
            ex = RayExecutor(c, use_cache=False)
            waits: list = []
            ex.on_wait = lambda endpoint, seconds, why: waits.append([endpoint, seconds, why])
            summary = await run(c, out, limit=2, use_cache=False, executor=ex)
            return {"simulated": summary["simulated"], "simulated_models": summary["simulated_models"],
                    "waits": waits, "faults": dict(srv.faults()), "documents": summary["documents"]}  # fmt: skip
        finally:
            await srv.stop()

    return asyncio.run(go())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def head() -> Iterator[tuple[str, dict[str, str]]]:
    """A `ray start --head` cluster on 127.0.0.1 for the block; yields its address and the env to join it."""
    ray_bin = str(Path(sys.executable).with_name("ray"))
    port = _free_port()
    tmp = tempfile.mkdtemp(prefix="rt", dir="/tmp")  # short: Ray's unix sockets live under it
    start = [ray_bin, "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}", "--num-cpus=2",
             "--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={tmp}"]  # fmt: skip
    # token authentication, with a token of this test's own (nothing read from or written to ~/.ray)
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    subprocess.run(start, check=True, capture_output=True, timeout=120, env=env)
    try:
        yield f"127.0.0.1:{port}", env
    finally:
        subprocess.run([ray_bin, "stop", "--force"], capture_output=True, timeout=120, env=env)


def _run_cmd(out: Path, address: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "autodata", "run", "examples/quickstart.yaml", "--out", str(out), "--limit", "8",
            "-q", "--no-cache", "--ray-address", address, "--set", "executor.workers=2",
            "--set", f"documents.paths=[{ROOT / 'examples/corpus/papers'}]", *extra]  # fmt: skip


def cluster(out: Path) -> dict:
    with head() as (address, env):
        res = subprocess.run(_run_cmd(out, address), cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
        listening = subprocess.run(["ss", "-ltnH"], capture_output=True, text=True).stdout
        return {"returncode": res.returncode, "stderr": res.stderr[-2000:], "listening": listening}


def _finished(db_path: Path) -> int:
    try:
        db = sqlite3.connect(str(db_path), timeout=5)
        try:
            return int(db.execute("SELECT COUNT(*) FROM documents").fetchone()[0])
        finally:
            db.close()
    except sqlite3.Error:
        return 0


def _in_flight_logged(db_path: Path) -> tuple[int, int]:
    """(documents committed, call rows of documents not committed): calls logged while their documents ran."""
    try:
        db = sqlite3.connect(str(db_path), timeout=5)
        try:
            done = int(db.execute("SELECT COUNT(*) FROM documents").fetchone()[0])
            running = db.execute("SELECT COUNT(*) FROM calls WHERE document_id NOT IN (SELECT id FROM documents)")
            return done, int(running.fetchone()[0])
        finally:
            db.close()
    except sqlite3.Error:
        return 0, 0


def driver_killed(out: Path) -> dict:
    """SIGKILL the driver of a run on a cluster mid-run, once calls of documents still running are in the
    call log (the workers report them as they come back), then run the same command again."""
    # prices do not change answers (not in the recipe): the reference run has none
    slow = ["--set", "models.weak.simulation.latency_ms=40", "--set", "models.strong.simulation.latency_ms=40",
            "--set", "loop.concurrency=2", "--set", "models.weak.price.input_per_mtok=1.5",
            "--set", "models.strong.price.output_per_mtok=7"]  # fmt: skip
    with head() as (address, env):
        env = {**env, "AUTODATA_CACHE_DIR": tempfile.mkdtemp(prefix="cache")}
        cmd = [c for c in _run_cmd(out, address, *slow) if c != "--no-cache"]
        with tempfile.TemporaryFile() as err:
            proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=err)
            deadline = time.monotonic() + 240
            done = running = 0
            while time.monotonic() < deadline and proc.poll() is None:
                done, running = _in_flight_logged(out / "run.db")
                if done >= 1 and running:
                    break
                time.sleep(0.02)
            alive = proc.poll() is None
            proc.kill()
            proc.wait(timeout=30)
            done, running = _in_flight_logged(out / "run.db")  # what the killed session committed, to the last one
            err.seek(0)
            first_err = err.read().decode(errors="replace")[-2000:]
        res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
        db = sqlite3.connect(str(out / "run.db"))
        try:
            made = "CASE WHEN cache_hit THEN 0 ELSE {} END"
            table = db.execute(
                f"SELECT SUM(1 - cache_hit), SUM(cache_hit), SUM({made.format('input_tokens')}), "
                f"SUM({made.format('output_tokens')}), SUM(cost_usd) FROM calls"
            ).fetchone()
            first = db.execute("SELECT COUNT(*) FROM calls WHERE session = (SELECT MIN(session) FROM calls)")
            first_calls = first.fetchone()[0]
            per_session = dict(db.execute("SELECT rowid, documents FROM sessions").fetchall())
        finally:
            db.close()
    summary = json.loads((out / "summary.json").read_text()) if (out / "summary.json").exists() else {}
    return {"killed_alive": alive, "done_before": done, "running_logged": running, "first_stderr": first_err,
            "returncode": res.returncode, "stderr": res.stderr[-2000:], "table": table, "first_calls": first_calls,
            "summary": summary, "documents_per_session": per_session}  # fmt: skip


def unreachable(out: Path) -> dict:
    res = subprocess.run(
        [sys.executable, "-m", "autodata", "run", "examples/quickstart.yaml", "--out", str(out), "--limit", "1",
         "-q", "--ray-address", f"127.0.0.1:{_free_port()}"],
        cwd=ROOT, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    return {"returncode": res.returncode, "stderr": res.stderr[-2000:]}


if __name__ == "__main__":
    name, out = sys.argv[1], Path(sys.argv[2])
    result = {
        "same_outputs": same_outputs,
        "worker_dies": worker_dies,
        "cluster": cluster,
        "driver_killed": driver_killed,
        "labels_and_waits": labels_and_waits,
        "unreachable": unreachable,
    }[name](out)
    print(json.dumps(result))
