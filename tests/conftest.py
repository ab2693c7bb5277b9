"""Shared test set-up: every test gets its own cache directory; nothing touches ~/.cache."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("AUTODATA_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    yield


# The simulated ladder as test configs name it: one endpoint per rung, in this order, the judge at
# temperature 0, and the roles on them. Functions, not shared dicts: callers change what they are given.
LADDER_ENDPOINTS = ("weak", "strong", "judge", "challenger")


def ladder_models(ep: Callable[..., dict[str, Any]], **per_endpoint: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A config's ``models``: ``ep(model, **keys)`` for each rung of :data:`LADDER_ENDPOINTS` (model
    ``sim-NAME``), the judge with ``sampling={"temperature": 0}``, plus ``per_endpoint[NAME]``'s keys."""
    return {
        name: ep(
            f"sim-{name}", **({"sampling": {"temperature": 0}} if name == "judge" else {}), **per_endpoint.get(name, {})
        )
        for name in LADDER_ENDPOINTS
    }


def ladder_roles(**extra: str) -> dict[str, str]:
    """A config's ``roles`` on :func:`ladder_models`' endpoints (the quality verifier on the judge), plus ``extra``."""
    return {
        "challenger": "challenger",
        "quality_verifier": "judge",
        "weak_solver": "weak",
        "strong_solver": "strong",
        "judge": "judge",
        **extra,
    }


def small_optimize(iterations: int) -> dict[str, int]:
    """A config's ``optimize``: ``iterations`` on 2 training, 2 validation and 1 test document, no canaries."""
    return {
        "iterations": iterations,
        "train_docs": 2,
        "val_docs": 2,
        "test_docs": 1,
        "minibatch": 2,
        "repeats": 1,
        "canary_size": 0,
    }


PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


@pytest.fixture
def no_proxies(monkeypatch):
    """httpx honours proxy variables; a test against 127.0.0.1 must never go through one."""
    for var in PROXY_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


@pytest.fixture
async def serve(no_proxies):
    """Factory: ``await serve(plan, shape, url_tail="", **endpoint)`` gives (a ``tests/faultserver.py``
    server, a runtime whose endpoint ``m`` talks to it over HTTP); everything is closed at teardown.
    ``url_tail``: the base URL's path (default ``/v1``); ``endpoint``: endpoint keys over the defaults
    (quick backoff, ``max_retries`` 3, ``timeout_s`` 10)."""

    from autodata.config import validate_config
    from autodata.llm.runtime import ModelRuntime
    from faultserver import FaultServer

    made: list[Any] = []

    async def make(plan: Any = None, shape: Any = None, url_tail: str = "", **endpoint: Any):
        srv = await FaultServer(plan=plan, shape=shape).start()
        ep: dict[str, Any] = {
            "provider": "openai",
            "model": "sim-weak",
            "base_url": f"http://127.0.0.1:{srv.port}{url_tail or '/v1'}",
            "backoff_base_s": 0.01,
            "backoff_max_s": 0.05,
            "max_retries": 3,
            "timeout_s": 10,
        }
        ep.update(endpoint)
        rt = ModelRuntime(validate_config({"seed": 0, "models": {"m": ep}}))
        made.append((srv, rt))
        return srv, rt

    yield make
    for srv, rt in made:
        await rt.aclose()
        await srv.stop()


@contextlib.contextmanager
def autodata_server(*args: str) -> Iterator[str]:
    """`python -m autodata ARGS` (a server command) in a subprocess; yields the first line it prints
    (the address), and stops it afterwards."""
    import subprocess
    import sys
    from pathlib import Path

    proc = subprocess.Popen(
        [sys.executable, "-m", "autodata", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    try:
        line = proc.stdout.readline()
        if not line:
            raise AssertionError(f"autodata {args[0]} printed nothing: {proc.stderr.read()}")
        yield line
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def kill_after_documents(proc: Any, run_db: Any, documents: int, seconds: float = 120) -> int:
    """SIGKILL ``proc`` (a ``subprocess.Popen`` of ``autodata run``) once ``run_db`` holds ``documents``
    finished documents; polls every 50 ms for at most ``seconds``. Returns the count read last. Fails the
    test if the command ended before it could be killed."""
    import os
    import signal
    import sqlite3
    import time

    deadline, done = time.monotonic() + seconds, 0
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            db = sqlite3.connect(str(run_db), timeout=5)
            done = db.execute("SELECT COUNT(*) FROM documents").fetchone()[0]
            db.close()
        except sqlite3.Error:
            done = 0
        if done >= documents:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    return done


def wait_until_answering(url: str, what: str, seconds: float = 20) -> None:
    import time
    import urllib.request

    deadline = time.monotonic() + seconds
    while True:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            assert time.monotonic() < deadline, f"{what} did not answer {url} within {seconds:g} s"
            time.sleep(0.1)


@pytest.fixture
def serve_sim():
    """`autodata serve-sim` on a free 127.0.0.1 port; yields its /v1 URL once /health answers."""
    with autodata_server("serve-sim", "--port", "0", "--seed", "0") as line:
        assert "SIMULATED" in line, line
        base = line.split(" on ")[1].split()[0]
        wait_until_answering(base.rsplit("/v1", 1)[0] + "/health", "serve-sim")
        yield base


def _finished_run(tmp_path_factory, config: str, limit: int):
    import os
    import subprocess
    import sys
    from pathlib import Path

    base = tmp_path_factory.mktemp("finished_run")
    out = base / "run"
    env = {**os.environ, "AUTODATA_CACHE_DIR": str(base / "cache")}  # session-scoped: its own cold cache
    res = subprocess.run(
        [sys.executable, "-m", "autodata", "run", config, "--out", str(out), "--limit", str(limit), "-q"],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=Path(__file__).resolve().parents[1],
        env=env,
    )
    assert res.returncode == 0, res.stderr
    return out


@pytest.fixture(scope="session")
def sim_run(tmp_path_factory):
    """A finished `autodata run` of the quick start on the simulated ladder (8 documents), shared by
    the review, report and export tests. Treat it as read-only: copy it (``run_copy``) to change it."""
    return _finished_run(tmp_path_factory, "examples/quickstart.yaml", 8)


@pytest.fixture(scope="session")
def verifiable_run(tmp_path_factory):
    """A finished run of the `verifiable` profile (short exact answers, no judge), 3 documents."""
    return _finished_run(tmp_path_factory, "examples/verifiable.yaml", 3)


@pytest.fixture
def run_copy(sim_run, tmp_path):
    """A private copy of ``sim_run`` that a test may change."""
    import shutil

    dest = tmp_path / "run"
    shutil.copytree(sim_run, dest)
    return dest


CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def chromium(tmp_path_factory):
    """A real headless Chromium (Debian's `chromium`, driven by Playwright) with a fresh profile.

    `.ci/run` installs it; in CI a missing browser fails the tests instead of skipping them. Module-scoped:
    Playwright's sync API runs its own event loop, which must be gone before asyncio tests run."""
    import os
    import shutil

    exe = os.environ.get("AUTODATA_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not exe:
        message = "chromium is not installed (Debian: apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=exe,
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1280, "height": 900},
        )
        context.set_default_timeout(15_000)
        try:
            yield context
        finally:
            context.close()
