"""One writer per output directory: a second `autodata run` (or optimize) on the same --out is refused
(exit 2, a message naming the holder); a lock left by a process killed with kill -9 is taken over."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from autodata.errors import UserError
from autodata.store.lock import LOCK_NAME, DirLock

ROOT = Path(__file__).resolve().parents[1]


def test_a_held_directory_is_refused_and_released_on_exit(tmp_path):
    with DirLock(tmp_path / "out", "run"):
        with pytest.raises(UserError) as info:
            DirLock(tmp_path / "out", "run").acquire()
        assert f"pid {os.getpid()}" in str(info.value) and "`autodata run`" in str(info.value)
    with DirLock(tmp_path / "out", "optimize"):  # released: the next one gets it
        pass


def test_optimize_refuses_a_directory_in_use(tmp_path):
    from autodata.config import load_config
    from autodata.meta.optimizer import Optimizer

    cfg = load_config(ROOT / "examples" / "optimize.yaml", ["optimize.iterations=1"])
    cwd = Path.cwd()
    os.chdir(ROOT)
    try:
        with DirLock(tmp_path / "opt", "optimize"), pytest.raises(UserError, match="in use by another"):
            import asyncio

            asyncio.run(Optimizer(cfg, tmp_path / "opt", use_cache=False).run())
    finally:
        os.chdir(cwd)
    assert sorted(p.name for p in (tmp_path / "opt").iterdir()) == [LOCK_NAME]  # nothing else was written


def test_two_runs_on_one_directory_then_a_killed_holder(tmp_path):
    env = {**os.environ, "AUTODATA_CACHE_DIR": str(tmp_path / "cache")}
    out = tmp_path / "run"
    slow = ["--set", "models.weak.simulation.latency_ms=8000", "--set", "loop.concurrency=1"]
    cmd = [sys.executable, "-m", "autodata", "run", "examples/quickstart.yaml", "--out", str(out), "-q", "--limit", "4"]
    first = subprocess.Popen([*cmd, *slow], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not (out / "run.db").exists() and time.monotonic() < deadline:  # the store opens under the lock
            time.sleep(0.05)
        assert first.poll() is None, "the first run ended before the second started"
        second = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        assert first.poll() is None, "the first run ended while the second was starting"
        assert second.returncode == 2, second.stdout
        assert "is in use by another autodata process" in second.stderr and f"pid {first.pid}" in second.stderr
        assert "Traceback" not in second.stderr
    finally:
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
    assert (out / LOCK_NAME).exists()  # the killed holder's file is still there: its lock is not
    res = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert res.returncode == 0, res.stderr


def test_the_refusal_names_the_command_holding_the_lock(tmp_path):
    """`autodata baseline` writes through the run driver; a second process is told `autodata baseline`
    holds the directory, not `autodata run` (checked from inside the baseline, while it holds the lock)."""
    import asyncio

    import yaml

    from autodata.baselines.run import run_baseline
    from autodata.config import validate_config

    data = yaml.safe_load((ROOT / "examples" / "quickstart.yaml").read_text())
    data["documents"]["paths"] = [str(ROOT / "examples" / "corpus" / "papers")]
    data["cache"] = {"enabled": False}
    cfg = validate_config(data)
    out = tmp_path / "b"
    told: list[str] = []

    def probe(_progress: object) -> None:
        try:
            DirLock(out, "run").acquire()
        except UserError as exc:
            told.append(str(exc))

    asyncio.run(run_baseline(cfg, out, "grounded", limit=1, on_progress=probe))
    assert told and all("`autodata baseline`" in t for t in told), told
