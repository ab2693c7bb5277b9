"""The sandbox's interface: executors, the HTTP service client, config and `autodata sandbox run`."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import BaseModel
from typer.testing import CliRunner

from autodata.cli import app
from autodata.config import validate_config
from autodata.errors import ConfigError, UserError
from autodata.sandbox import (
    BubblewrapExecutor,
    Limits,
    SandboxUnavailable,
    SubprocessExecutor,
    executor_from_config,
    make_executor,
)
from autodata.sandbox.http import HttpSandboxExecutor

SOLUTION = "def add(a, b):\n    return a + b\n"
TESTS = (
    "from solution import add\n\ndef test_one():\n    assert add(1, 2) == 3\n\n"
    "def test_two():\n    assert add(2, 2) == 5\n"
)
FAST = Limits(cpu_seconds=2, wall_seconds=15)  # generous wall time: CI machines are shared
needs_bwrap = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bwrap is not installed")


def test_subprocess_executor_counts_tests_and_says_it_is_weaker() -> None:
    ex = SubprocessExecutor(FAST)
    r = ex.run(SOLUTION, TESTS)
    assert (r.passed, r.total, r.pass_rate) == (1, 2, 0.5)
    assert r.failures[0].test == "test_two" and "assert add(2, 2) == 5" in r.failures[0].error
    assert ex.weaker and "WEAKER" in r.isolation
    assert not r.all_passed and r.to_dict()["pass_rate"] == 0.5


FORGER = (
    "import json, os\n"
    "def add(a, b):\n"
    "    for fd in range(3, 64):  # every inherited descriptor gets forged passing records\n"
    "        for t in ('test_one', 'test_two'):\n"
    "            try:\n"
    "                os.write(fd, (json.dumps({'test': t, 'ok': True}) + '\\n').encode())\n"
    "            except OSError:\n"
    "                pass\n"
    "    return 0\n"
)


def test_a_solution_that_writes_forged_records_to_its_descriptors_gains_nothing() -> None:
    r = SubprocessExecutor(FAST).run(FORGER, TESTS)
    assert (r.passed, r.total) == (0, 2)  # add returns 0: both tests really fail


def test_tests_that_do_not_parse_or_collect_nothing() -> None:
    ex = SubprocessExecutor(FAST)
    r = ex.run(SOLUTION, "def test_x(:\n")
    assert r.total == 0 and "do not parse" in (r.collect_error or "")
    r = ex.run(SOLUTION, "x = 1\n")
    assert r.total == 0 and r.pass_rate == 0.0
    assert "no tests found" in (r.collect_error or "")  # said, not a bare 0/0
    r = ex.run(SOLUTION, "")
    assert r.total == 0 and "no tests found" in (r.collect_error or "") and not r.all_passed


def test_fixtures_and_setup_errors_fail_their_tests() -> None:
    ex = SubprocessExecutor(FAST)
    r = ex.run(SOLUTION, "def test_f(tmp_path):\n    pass\n\nasync def test_async():\n    assert True\n")
    assert (r.passed, r.total) == (1, 2) and "fixtures" in r.failures[0].error
    r = ex.run(SOLUTION, "from solution import nope\nassert 1 == 1\nassert 2 == 2\n")
    assert (r.passed, r.total) == (0, 2) and all("setup failed" in f.error for f in r.failures)


def test_bwrap_missing_is_refused_with_the_install_command() -> None:
    ex = BubblewrapExecutor(FAST, bwrap=None)
    ex.bwrap = None
    with pytest.raises(SandboxUnavailable, match="apt-get install -y bubblewrap"):
        ex.run(SOLUTION, TESTS)


def test_make_executor_and_config() -> None:
    assert isinstance(make_executor("subprocess"), SubprocessExecutor)
    assert isinstance(make_executor("bwrap"), BubblewrapExecutor)
    assert isinstance(make_executor("http", url="http://127.0.0.1:1"), HttpSandboxExecutor)
    with pytest.raises(ValueError, match="expected one of"):
        make_executor("docker")
    with pytest.raises(ValueError, match=r"sandbox\.url"):
        make_executor("http")
    base = {"models": {"m": {"provider": "simulated", "model": "sim-strong"}}}
    cfg = validate_config({**base, "sandbox": {"kind": "subprocess", "limits": {"cpu_seconds": 3}}})
    ex = executor_from_config(cfg.sandbox)
    assert isinstance(ex, SubprocessExecutor) and ex.limits.cpu_seconds == 3
    with pytest.raises(ConfigError) as e:
        validate_config({**base, "sandbox": {"kind": "http"}})
    assert "sandbox.url" in e.value.render()
    with pytest.raises(ConfigError) as e:
        validate_config({**base, "sandbox": {"kind": "docker"}})
    assert "sandbox.kind" in e.value.render()
    cfg = validate_config({**base, "sandbox": {"kind": "http", "url": "http://u:secret@127.0.0.1:9"}})
    assert "secret" not in json.dumps(cfg.redacted_dump())


# --------------------------------------------------------------------------- a SandboxFusion emulation
#
# The emulation follows SandboxFusion's documented /run_code contract (RunCodeRequest and
# RunCodeResponse in sandbox/server/sandbox_api.py of https://github.com/bytedance/SandboxFusion):
# files are base64 by relative path, placed in the run's temporary working directory; the code runs
# with ``python``; run_result carries status Finished / TimeLimitExceeded, return_code, stdout, stderr;
# the top-level status is Success, Failed (non-zero return code or time limit) or SandboxError.


class RunCodeRequest(BaseModel):
    code: str
    language: str
    compile_timeout: float = 10
    run_timeout: float = 10
    memory_limit_MB: int = -1
    stdin: str | None = None
    files: dict[str, str | None] = {}
    fetch_files: list[str] = []


def _emulated_service(mode: str = "ok"):
    from fastapi import FastAPI

    api = FastAPI()
    seen: list[dict] = []

    @api.post("/run_code")
    def run_code(req: RunCodeRequest) -> dict:
        seen.append(req.model_dump())
        if mode == "error":
            return {"status": "SandboxError", "message": "executor pod evicted", "run_result": None, "files": {}}
        with tempfile.TemporaryDirectory() as d:
            for name, b64 in req.files.items():
                Path(d, name).write_bytes(base64.b64decode(b64 or ""))
            Path(d, "main.py").write_text(req.code)
            try:
                p = subprocess.run(
                    [sys.executable, "main.py"], cwd=d, capture_output=True, text=True, timeout=req.run_timeout
                )
                run = {"status": "Finished", "execution_time": 0.1, "return_code": p.returncode,
                       "stdout": p.stdout, "stderr": p.stderr}  # fmt: skip
            except subprocess.TimeoutExpired:
                run = {"status": "TimeLimitExceeded", "execution_time": req.run_timeout, "return_code": None,
                       "stdout": "", "stderr": ""}  # fmt: skip
        status = "Success" if run["return_code"] == 0 else "Failed"
        return {"status": status, "message": "", "compile_result": None, "run_result": run, "files": {}}

    return api, seen


@pytest.fixture
def service() -> Iterator[tuple[str, list[dict]]]:
    import uvicorn

    api, seen = _emulated_service()
    cfg = uvicorn.Config(api, host="127.0.0.1", port=0, log_level="error")
    server = uvicorn.Server(cfg)
    th = threading.Thread(target=server.run, daemon=True)
    th.start()
    for _ in range(1200):  # up to 60 s on a loaded machine
        if server.started:
            break
        threading.Event().wait(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", seen
    finally:
        server.should_exit = True
        th.join(30)


def test_http_executor_against_an_emulated_sandboxfusion(service: tuple[str, list[dict]]) -> None:
    url, seen = service
    ex = HttpSandboxExecutor(url + "/run_code", FAST)
    r = ex.run(SOLUTION, TESTS)
    assert (r.passed, r.total) == (1, 2) and r.infra_error is None
    assert "remote sandbox service" in r.isolation
    body = seen[-1]
    assert body["language"] == "python" and set(body["files"]) == {"solution.py", "tests.py"}
    assert base64.b64decode(body["files"]["solution.py"]).decode() == SOLUTION
    r = ex.run("import time\ndef add(a, b):\n    time.sleep(600)\n", TESTS, Limits(cpu_seconds=1, wall_seconds=3))
    assert r.passed == 0 and r.stop_reason == "time"


def test_http_executor_service_errors_are_infra_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn

    api, _ = _emulated_service("error")
    server = uvicorn.Server(uvicorn.Config(api, host="127.0.0.1", port=0, log_level="error"))
    th = threading.Thread(target=server.run, daemon=True)
    th.start()
    for _ in range(1200):
        if server.started:
            break
        threading.Event().wait(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        r = HttpSandboxExecutor(f"http://127.0.0.1:{port}", FAST).run(SOLUTION, TESTS)
        assert r.infra_error and "SandboxError" in r.infra_error and "evicted" in r.infra_error
    finally:
        server.should_exit = True
        th.join(10)
    r = HttpSandboxExecutor(f"http://127.0.0.1:{port}", FAST).run(SOLUTION, TESTS)  # nothing listens now
    assert r.infra_error and "failed" in r.infra_error
    monkeypatch.delenv("NO_SUCH_SANDBOX_KEY", raising=False)
    with pytest.raises(SandboxUnavailable, match="NO_SUCH_SANDBOX_KEY"):
        HttpSandboxExecutor("http://127.0.0.1:1", api_key_env="NO_SUCH_SANDBOX_KEY").run(SOLUTION, TESTS)


# --------------------------------------------------------------------------- the CLI


def _files(tmp_path: Path, solution: str = SOLUTION, tests: str = TESTS) -> tuple[Path, Path]:
    s, t = tmp_path / "sol.py", tmp_path / "tests.py"
    s.write_text(solution)
    t.write_text(tests)
    return s, t


@needs_bwrap
def test_cli_sandbox_run_prints_passed_failures_and_resources(tmp_path: Path) -> None:
    s, t = _files(tmp_path)
    res = CliRunner().invoke(app, ["sandbox", "run", str(s), "--tests", str(t)])
    assert res.exit_code == 1, res.output
    assert "passed 1/2" in res.output and "FAIL test_two" in res.output and "bubblewrap" in res.output
    assert "resources: cpu seconds" in res.output
    res = CliRunner().invoke(app, ["sandbox", "run", str(s), "--tests", str(t), "--json"])
    data = json.loads(res.output)
    assert data["passed"] == 1 and data["total"] == 2 and data["failures"][0]["test"] == "test_two"
    s2, t2 = _files(tmp_path, tests="from solution import add\nassert add(1, 1) == 2\n")
    assert CliRunner().invoke(app, ["sandbox", "run", str(s2), "--tests", str(t2)]).exit_code == 0


def test_cli_sandbox_run_follows_the_config_and_reports_stops(tmp_path: Path) -> None:
    s, t = _files(tmp_path, solution="def add(a, b):\n    while True:\n        pass\n")
    args = ["sandbox", "run", str(s), "--tests", str(t), "--set", "sandbox.kind=subprocess"]
    args += ["--set", "sandbox.limits.cpu_seconds=1", "--set", "sandbox.limits.wall_seconds=20"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 1, res.output
    assert "WEAKER" in res.output and "stopped: " in res.output
    res = CliRunner().invoke(app, ["sandbox", "run", str(tmp_path / "missing.py"), "--tests", str(t)])
    assert isinstance(res.exception, UserError) and "cannot read" in res.exception.message


def test_cli_refuses_when_bwrap_is_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    s, t = _files(tmp_path)
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None)
    res = CliRunner().invoke(app, ["sandbox", "run", str(s), "--tests", str(t)])
    assert isinstance(res.exception, UserError) and "apt-get install -y bubblewrap" in res.exception.message
    assert os.environ.get("PATH")  # untouched


def test_a_run_that_ends_without_a_report_still_counts_the_files_tests() -> None:
    """The solution kills its runner: the run is 0 of the file's tests, each named, not a bare 0/0."""
    from autodata.sandbox.local import planned_tests

    assert planned_tests("def test_a():\n    pass\n\ndef helper():\n    pass\n\ndef test_b():\n    pass\n") == [
        "test_a",
        "test_b",
    ]
    assert planned_tests("from solution import f\nassert f(1) == 2\nassert f(2) == 3\n") == [
        "line 2: assert f(1) == 2",
        "line 3: assert f(2) == 3",
    ]
    assert planned_tests("def test_x(:\n") == []
    killer = "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\n\ndef add(a, b):\n    return a + b\n"
    r = SubprocessExecutor(FAST).run(killer, TESTS)
    assert r.stop_reason == "killed" and r.infra_error is None
    assert (r.passed, r.total) == (0, 2) and all(f.error.startswith("not run:") for f in r.failures)
