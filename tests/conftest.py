"""Shared test set-up: every test gets its own cache directory; nothing touches ~/.cache."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("AUTODATA_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    yield


@pytest.fixture
def serve_sim():
    """`autodata serve-sim` on a free 127.0.0.1 port; yields its /v1 URL once /health answers."""
    import subprocess
    import sys
    import time
    import urllib.request
    from pathlib import Path

    proc = subprocess.Popen(
        [sys.executable, "-m", "autodata", "serve-sim", "--port", "0", "--seed", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    try:
        line = proc.stdout.readline()
        assert "SIMULATED" in line, line
        base = line.split(" on ")[1].split()[0]
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(base.rsplit("/v1", 1)[0] + "/health", timeout=2)
                break
            except OSError:
                assert time.monotonic() < deadline, "serve-sim did not answer /health within 20 s"
                time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
