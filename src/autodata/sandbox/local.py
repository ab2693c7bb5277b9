"""Sandboxes on this machine: bubblewrap (the default) and a weaker subprocess mode (opt-in).

:class:`BubblewrapExecutor` runs the runner (``runner.py``) under Debian's ``bwrap``
(https://github.com/containers/bubblewrap, ``man bwrap``):

- new user, PID, network, IPC and UTS namespaces (``--unshare-user --unshare-pid --unshare-net
  --unshare-ipc --unshare-uts``, ``--unshare-cgroup-try``), so there is no network at all (only a
  loopback with nothing listening) and no process of the host is visible or signalable;
- a root made only of ``/usr`` (and its ``/bin``, ``/lib``, ``/lib64``, ``/sbin`` links) and the
  Python installation, all read-only: no ``/home``, ``/root``, ``/etc``, ``/var``, no run
  directory, no cache; a fresh ``/proc`` and a minimal ``/dev``;
- a private tmpfs ``/tmp`` of ``Limits.tmp_bytes`` (``--size``), the only writable place;
- the solution, the tests and the runner copied in from memory file descriptors
  (``--ro-bind-data``), read-only under ``/sandbox``;
- ``--die-with-parent`` (the sandbox dies with autodata), ``--new-session`` (no terminal
  injection), ``--clearenv`` (no inherited secrets in the environment), ``--disable-userns``;
- when autodata runs as root, ``bwrap`` is started as an unprivileged user (uid/gid 65534):
  Linux does not apply RLIMIT_NPROC to root, so without this a fork bomb would only be stopped by
  the supervisor's process count;
- the runner then sets rlimits on the test process (CPU seconds, address space, processes inside
  the sandbox's own user namespace, file size, no core dumps) and watches wall time, process count
  and output size.

The host kills the whole process group after ``wall_seconds`` plus a grace period, whatever
happens inside.

:class:`SubprocessExecutor` runs the same runner in a plain child process in a fresh temporary
directory with the same rlimits and supervisor, an empty environment and ``python -I``; it has
**no filesystem or network isolation** (the solution can read what the user can read and open
sockets), so it is only used when a config says ``sandbox.kind: subprocess`` explicitly, and every
result and summary says so.
"""

from __future__ import annotations

import ast
import json
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from autodata.sandbox.types import Limits, SandboxExecutor, SandboxResult, SandboxUnavailable, TestFailure

RUNNER = Path(__file__).with_name("runner.py")
MARKER = "AUTODATA_SANDBOX_REPORT "
GRACE_SECONDS = 5.0  # the host's own kill comes this long after the supervisor's wall limit
MAX_HOST_READ = 4_000_000  # bytes of the sandbox's stdout the host reads at most
NOBODY = 65534
INSTALL_HINT = (
    "install bubblewrap (Debian/Ubuntu: sudo apt-get install -y bubblewrap; Fedora: sudo dnf install bubblewrap)"
)


def interpreter() -> tuple[str, str]:
    """The base Python interpreter (not a virtualenv's wrapper) and its installation prefix.

    The sandbox runs the standard library only: a virtualenv's packages are not mounted.
    """
    exe = os.path.realpath(sys.executable)
    return exe, os.path.realpath(sys.base_prefix)


def _read_report(proc: subprocess.Popen[bytes], deadline: float) -> tuple[bytes, bytes, bool]:
    """The sandbox's stdout and stderr, each capped, until it exits or ``deadline`` (monotonic) passes.

    Returns (stdout, stderr, timed_out). A solution that writes to its supervisor's stdout cannot
    make the host buffer more than ``MAX_HOST_READ`` bytes.
    """
    assert proc.stdout is not None and proc.stderr is not None
    bufs = {proc.stdout: bytearray(), proc.stderr: bytearray()}
    sel = selectors.DefaultSelector()
    for f in bufs:
        os.set_blocking(f.fileno(), False)
        sel.register(f, selectors.EVENT_READ)
    open_streams = 2
    timed_out = False
    while open_streams:
        left = deadline - time.monotonic()
        if left <= 0:
            timed_out = True
            break
        for key, _ in sel.select(timeout=min(left, 0.5)):
            f = key.fileobj
            try:
                chunk = os.read(f.fileno(), 65536)  # type: ignore[union-attr]
            except BlockingIOError:
                continue
            if not chunk:
                sel.unregister(f)
                open_streams -= 1
                continue
            buf = bufs[f]  # type: ignore[index]
            if len(buf) < MAX_HOST_READ:
                buf += chunk[: MAX_HOST_READ - len(buf)]
    sel.close()
    return bytes(bufs[proc.stdout]), bytes(bufs[proc.stderr]), timed_out


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.kill()
    except ProcessLookupError:
        pass


def _parse(stdout: bytes, isolation: str) -> SandboxResult | None:
    text = stdout.decode("utf-8", "replace")
    at = text.rfind("\n" + MARKER)
    if at < 0:
        return None
    line = text[at + 1 + len(MARKER) :].split("\n", 1)[0]
    try:
        report = json.loads(line)
    except ValueError:
        return None
    return SandboxResult.from_report(report, isolation) if isinstance(report, dict) else None


def planned_tests(tests_code: str) -> list[str]:
    """The tests a file holds, by the runner's rule (top-level ``test*`` functions, else each top-level
    ``assert``), for a run that ended without a report: its total stays the file's, not 0."""
    try:
        tree = ast.parse(tests_code)
    except SyntaxError:
        return []
    funcs = [
        n.name
        for n in tree.body
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name.startswith("test")
    ]
    if funcs:
        return list(dict.fromkeys(funcs))
    asserts = [n for n in tree.body if isinstance(n, ast.Assert)]
    segments = [" ".join((ast.get_source_segment(tests_code, n) or "assert").split()) for n in asserts]
    return [f"line {n.lineno}: {seg[:100]}" for n, seg in zip(asserts, segments, strict=True)]


def _unreported(tests_code: str, stop_reason: str, detail: str, **fields: Any) -> SandboxResult:
    """A run without the runner's report: every planned test failed as not run, for ``detail``."""
    names = planned_tests(tests_code)
    failures = tuple(TestFailure(n, f"not run: {detail}") for n in names)
    return SandboxResult(0, len(names), failures, stop_reason=stop_reason, stop_detail=detail, **fields)


class _LocalExecutor(SandboxExecutor):
    def _spawn(
        self, solution_code: str, tests_code: str, limits: Limits
    ) -> tuple[list[str], dict[str, object], Path | None]:
        raise NotImplementedError

    def run(self, solution_code: str, tests_code: str, limits: Limits | None = None) -> SandboxResult:
        lim = limits or self.limits
        self.check()
        cmd, popen_kw, scratch = self._spawn(solution_code, tests_code, lim)
        start = time.monotonic()
        try:
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
                **popen_kw,  # type: ignore[arg-type]
            )
        except OSError as err:
            self._cleanup(popen_kw, scratch)
            return SandboxResult.infra(f"could not start the sandbox: {err}", self.isolation)
        try:
            out, err, timed_out = _read_report(proc, start + lim.wall_seconds + GRACE_SECONDS)
            if timed_out:
                _kill_group(proc)
            else:
                try:
                    proc.wait(timeout=GRACE_SECONDS)
                except subprocess.TimeoutExpired:
                    _kill_group(proc)
            _kill_group(proc)  # anything left in the group (the sandbox is gone by now under bwrap)
            proc.wait()
        finally:
            self._cleanup(popen_kw, scratch)
        wall = round(time.monotonic() - start, 3)
        result = _parse(out, self.isolation)
        if result is not None:
            result.resources["host_seconds"] = wall  # the whole run as the host saw it (sandbox start-up included)
            return result
        errtext = err.decode("utf-8", "replace").strip()
        if timed_out:
            detail = f"the sandbox did not report within {lim.wall_seconds + GRACE_SECONDS:g} s"
            return _unreported(tests_code, "time", detail, resources={"host_seconds": wall}, isolation=self.isolation)
        if errtext.startswith("bwrap:"):
            return SandboxResult.infra(f"bwrap failed: {errtext[:500]}", self.isolation, {"host_seconds": wall})
        # the runner died without a report: the solution killed its supervisor (or the whole sandbox)
        detail = f"the sandbox's runner ended without a report (exit code {proc.returncode})"
        return _unreported(
            tests_code,
            "killed",
            detail,
            resources={"host_seconds": wall},
            isolation=self.isolation,
            stderr_tail=errtext[-2000:],
        )

    def _cleanup(self, popen_kw: dict[str, object], scratch: Path | None) -> None:
        for fd in popen_kw.get("pass_fds", ()) or ():  # type: ignore[union-attr]
            try:
                os.close(int(fd))  # type: ignore[arg-type]
            except OSError:
                pass
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)

    @staticmethod
    def _spec(code_dir: str, work: str, lim: Limits, *, pidns: bool = False) -> str:
        return json.dumps({"code_dir": code_dir, "work": work, "limits": lim.to_dict(), "pidns": pidns})


def _world_readable(path: str) -> bool:
    """True when every directory on the way is world-searchable and the file world-readable."""
    p = Path(path)
    try:
        if not p.stat().st_mode & 0o004:
            return False
        return all(d.stat().st_mode & 0o001 for d in p.parents)
    except OSError:
        return False


def _memfd(name: str, data: bytes) -> int:
    fd = os.memfd_create(name, 0)
    os.write(fd, data) if len(data) < 65536 else _write_all(fd, data)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


class BubblewrapExecutor(_LocalExecutor):
    """The default sandbox on Linux: ``bwrap`` namespaces plus rlimits (see the module docstring).

    Raises :class:`SandboxUnavailable` from :meth:`check` (and :meth:`run`) when ``bwrap`` is not
    installed, naming the install command.
    """

    name = "bwrap"
    isolation = "bubblewrap (no network, read-only system, private /tmp, rlimits)"

    def __init__(
        self, limits: Limits | None = None, *, bwrap: str | None = None, python: str | None = None, workers: int = 2
    ) -> None:
        super().__init__(limits, workers=workers)
        self.bwrap = bwrap or shutil.which("bwrap")
        self.as_nobody = os.geteuid() == 0
        if python is not None:
            self.python = os.path.realpath(python)
            self.prefix = os.path.dirname(os.path.dirname(self.python))
        else:
            self.python, self.prefix = interpreter()
        if self.as_nobody and not _world_readable(self.python):
            # unprivileged bwrap cannot reach an interpreter under a private home (e.g. /root/.pyenv):
            # take the system's, or stay root (then only the supervisor's process count holds a fork bomb)
            system = os.path.realpath("/usr/bin/python3")
            if python is None and os.path.exists(system) and _world_readable(system):
                self.python, self.prefix = system, "/usr"
            else:
                self.as_nobody = False
        if not self.as_nobody and os.geteuid() == 0:
            self.isolation += "; running as root: RLIMIT_NPROC not enforced by Linux, process count by the supervisor"

    def check(self) -> None:
        if not self.bwrap:
            raise SandboxUnavailable(
                f"the code sandbox needs bubblewrap (bwrap), which is not installed: {INSTALL_HINT}; "
                "or set sandbox.kind: subprocess to run code WITHOUT filesystem or network isolation"
            )

    def _spawn(
        self, solution_code: str, tests_code: str, limits: Limits
    ) -> tuple[list[str], dict[str, object], Path | None]:
        assert self.bwrap
        fds: list[int] = []
        cmd = [
            self.bwrap,
            "--unshare-user",
            "--unshare-pid",
            "--unshare-net",
            "--unshare-ipc",
            "--unshare-uts",
            "--unshare-cgroup-try",
            "--disable-userns",
            "--die-with-parent",
            "--new-session",
            "--clearenv",
            "--setenv", "HOME", "/tmp",
            "--setenv", "PATH", "/usr/bin:/bin",
            "--setenv", "LANG", "C.UTF-8",
            "--setenv", "PYTHONDONTWRITEBYTECODE", "1",
            "--ro-bind", "/usr", "/usr",
        ]  # fmt: skip
        for top in ("bin", "lib", "lib64", "lib32", "sbin"):
            p = Path("/") / top
            if p.is_symlink():
                cmd += ["--symlink", os.readlink(p), str(p)]
            elif p.is_dir():
                cmd += ["--ro-bind", str(p), str(p)]
        if not (self.prefix == "/usr" or self.prefix.startswith("/usr/")):
            cmd += ["--ro-bind", self.prefix, self.prefix]
        cmd += ["--proc", "/proc", "--dev", "/dev", "--size", str(limits.tmp_bytes), "--tmpfs", "/tmp"]
        cmd += ["--dir", "/sandbox"]
        for name, data in (
            ("runner.py", RUNNER.read_bytes()),
            ("solution.py", solution_code.encode()),
            ("tests.py", tests_code.encode()),
        ):
            fd = _memfd(name, data)
            fds.append(fd)
            cmd += ["--perms", "0444", "--ro-bind-data", str(fd), f"/sandbox/{name}"]
        cmd += [
            "--chdir",
            "/tmp",
            self.python,
            "-I",
            "/sandbox/runner.py",
            self._spec("/sandbox", "/tmp/work", limits, pidns=True),
        ]
        kw: dict[str, object] = {"pass_fds": tuple(fds), "env": {"PATH": "/usr/bin:/bin"}}
        if self.as_nobody:
            kw.update(user=NOBODY, group=NOBODY, extra_groups=[])
        return cmd, kw, None


class SubprocessExecutor(_LocalExecutor):
    """A plain child process with rlimits: NO filesystem or network isolation. Opt-in only."""

    name = "subprocess"
    isolation = "subprocess (WEAKER: rlimits only, no filesystem or network isolation)"
    weaker = True

    def __init__(self, limits: Limits | None = None, *, python: str | None = None, workers: int = 2) -> None:
        super().__init__(limits, workers=workers)
        self.python = python or interpreter()[0]

    def _spawn(
        self, solution_code: str, tests_code: str, limits: Limits
    ) -> tuple[list[str], dict[str, object], Path | None]:
        scratch = Path(tempfile.mkdtemp(prefix="autodata-sandbox-"))
        code = scratch / "code"
        code.mkdir()
        (code / "solution.py").write_text(solution_code, encoding="utf-8")
        (code / "tests.py").write_text(tests_code, encoding="utf-8")
        runner = code / "runner.py"
        shutil.copyfile(RUNNER, runner)
        work = scratch / "work"
        env = {"PATH": "/usr/bin:/bin", "HOME": str(work), "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1"}
        cmd = [self.python, "-I", str(runner), self._spec(str(code), str(work), limits)]
        return cmd, {"env": env, "cwd": str(scratch)}, scratch
