"""The test runner that runs *inside* the sandbox (standard library only; never imported by autodata).

Invoked as ``python -I runner.py SPEC_JSON`` where the spec names the directory holding
``solution.py`` and ``tests.py``, a writable work directory and the limits. It is two processes:

- the **supervisor** (this process): marks itself a child subreaper (orphans of the solution are
  re-parented to it, so a double fork cannot escape), forks the test process, reads its stdout and
  stderr from pipes (counting every byte, keeping them in files for the report's tails), and every
  few milliseconds checks the wall clock and the number of descendant processes; a breach (or
  output past its limit) kills every descendant with SIGKILL and names the limit. Output goes
  through the supervisor, so it is counted exactly whatever the machine's load: a writer faster
  than the supervisor blocks on the full pipe instead of running past the output limit into
  another one. When the test process ends it kills what is left, reaps everything, reads the
  per-test records and prints one report line, ``AUTODATA_SANDBOX_REPORT {json}``, on its standard
  output.
- the **test process**: a new session, resource limits (RLIMIT_CPU, RLIMIT_AS, RLIMIT_NPROC,
  RLIMIT_FSIZE, RLIMIT_CORE=0), stdout/stderr to the supervisor's pipes, then the tests: pytest-style
  top-level ``test*`` functions (in source order), or, when there are none, every top-level
  ``assert`` statement of the file as one test (other statements run in order as setup). The
  solution is importable as module ``solution`` (its directory is first on ``sys.path``). The names
  of the tests are recorded before anything runs, so a run stopped half way still has its total.

The records are written by the process that runs the solution. Each carries a per-run secret the
supervisor drew before forking, and records without it are dropped, so writing result lines to
every inherited file descriptor forges nothing. A solution written against this runner's own
internals (reading its memory for the secret, calling its recorder) could still forge them: the
sandbox contains what code can *do*, it does not make a hostile program's self-report trustworthy
(the same holds for any in-process test harness).
"""

import ast
import json
import os
import resource
import select
import signal
import sys
import time
import traceback

MARKER = "AUTODATA_SANDBOX_REPORT "
MAX_ERROR_CHARS = 600
MAX_TAIL_CHARS = 2000
POLL_SECONDS = 0.005
READ_CHUNK = 65536


def _limit(kind, value, hard=None):
    try:
        resource.setrlimit(kind, (value, value if hard is None else hard))
    except (ValueError, OSError):  # a hard limit lower than asked stays in force
        _soft, hard = resource.getrlimit(kind)
        if hard != resource.RLIM_INFINITY and value > hard:
            resource.setrlimit(kind, (hard, hard))


# --------------------------------------------------------------------------- the test process


def _error_text(exc, tests_path):
    line = ""
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if frame.filename == tests_path:
            line = f" (tests line {frame.lineno}: {(frame.line or '').strip()})"
            break
    text = f"{type(exc).__name__}: {exc}".rstrip(": ") + line
    return text[:MAX_ERROR_CHARS]


# A per-run secret the supervisor draws before it forks; it keeps only the records that carry it, so
# a solution that writes result lines to every file descriptor it inherited forges nothing. Code
# written to read the runner's own memory could still find it: see the module docstring.
_KEY = ""


def _record(fd, obj):
    os.write(fd, (json.dumps({**obj, "key": _KEY}) + "\n").encode())


def _assert_name(node, source):
    seg = ast.get_source_segment(source, node) or "assert"
    seg = " ".join(seg.split())
    return f"line {node.lineno}: {seg[:100]}"


def _no_tests(collected):
    """Why a run counted no tests (None when it counted some): a file without any is said so, not shown as 0/0."""
    if collected is None:
        return "no tests collected"
    if not collected:
        return "no tests found: define top-level test_* functions or top-level assert statements"
    return None


def run_tests(code_dir, tests_path, record_fd):
    sys.path.insert(0, code_dir)
    sys.dont_write_bytecode = True
    with open(tests_path, encoding="utf-8") as f:
        source = f.read()
    try:
        tree = ast.parse(source, tests_path)
    except SyntaxError as exc:
        _record(record_fd, {"collected": [], "collect_error": f"the tests do not parse: {exc}"})
        return
    funcs = [
        n.name
        for n in tree.body
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name.startswith("test")
    ]
    if funcs:
        names = list(dict.fromkeys(funcs))
        _record(record_fd, {"collected": names})
        ns = {"__name__": "tests", "__file__": tests_path}
        try:
            exec(compile(tree, tests_path, "exec"), ns)
        except BaseException as exc:  # the module (or the solution it imports) failed: every test fails
            err = "the tests module failed to load: " + _error_text(exc, tests_path)
            for name in names:
                _record(record_fd, {"test": name, "ok": False, "error": err})
            return
        for name in names:
            fn = ns.get(name)
            try:
                if not callable(fn):
                    raise TypeError(f"{name} is not a function")
                if getattr(fn, "__code__", None) is not None and fn.__code__.co_argcount:
                    raise TypeError(f"{name} takes arguments (pytest fixtures are not supported)")
                result = fn()
                if hasattr(result, "__await__"):
                    import asyncio

                    asyncio.run(result)
            except BaseException as exc:
                _record(record_fd, {"test": name, "ok": False, "error": _error_text(exc, tests_path)})
            else:
                _record(record_fd, {"test": name, "ok": True})
        return
    asserts = [n for n in tree.body if isinstance(n, ast.Assert)]
    names = [_assert_name(n, source) for n in asserts]
    _record(record_fd, {"collected": names})
    ns = {"__name__": "tests", "__file__": tests_path}
    setup_error = None
    i = 0
    for node in tree.body:
        is_test = isinstance(node, ast.Assert)
        if setup_error is not None:
            if is_test:
                _record(record_fd, {"test": names[i], "ok": False, "error": setup_error})
                i += 1
            continue
        try:
            exec(compile(ast.Module(body=[node], type_ignores=[]), tests_path, "exec"), ns)
        except BaseException as exc:
            err = _error_text(exc, tests_path)
            if is_test:
                _record(record_fd, {"test": names[i], "ok": False, "error": err})
            else:
                setup_error = "setup failed: " + err
        else:
            if is_test:
                _record(record_fd, {"test": names[i], "ok": True})
        if is_test:
            i += 1


def child(spec, record_fd, out, err):
    """The test process: ``out`` and ``err`` are the write ends of the supervisor's pipes."""
    os.setsid()
    lim = spec["limits"]
    work = spec["work"]
    _limit(resource.RLIMIT_CORE, 0)
    # SIGXCPU at the limit (it ends the process), SIGKILL a second later for a process that ignores it
    _limit(resource.RLIMIT_CPU, int(lim["cpu_seconds"]), int(lim["cpu_seconds"]) + 1)
    _limit(resource.RLIMIT_AS, int(lim["memory_mb"]) * 1024 * 1024)
    _limit(resource.RLIMIT_FSIZE, int(lim["file_size_bytes"]))
    _limit(resource.RLIMIT_NPROC, int(lim["processes"]))
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(out, 1)
    os.dup2(err, 2)
    for fd in (devnull, out, err):
        os.close(fd)
    sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115 - lives as long as the process
    sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115
    os.chdir(work)
    run_tests(spec["code_dir"], os.path.join(spec["code_dir"], "tests.py"), record_fd)
    sys.stdout.flush()
    sys.stderr.flush()


# --------------------------------------------------------------------------- the supervisor


def _children_table():
    """{pid: ppid} of every process this supervisor can see."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                data = f.read()
        except OSError:
            continue
        rest = data[data.rfind(b")") + 2 :].split()
        if len(rest) > 1:
            table[int(entry)] = int(rest[1])
    return table


def descendants(root):
    table = _children_table()
    kids = {}
    for pid, ppid in table.items():
        kids.setdefault(ppid, []).append(pid)
    out, stack = [], [root]
    while stack:
        for k in kids.get(stack.pop(), ()):
            out.append(k)
            stack.append(k)
    return out


def kill_all(me, pidns=False):
    if pidns:  # alone in a PID namespace: kill(-1) reaches every process but init and this one, at once
        for _ in range(5):
            try:
                os.kill(-1, signal.SIGKILL)
            except OSError:
                pass
            _reap()
    for _ in range(50):  # a fork bomb keeps forking while we kill: repeat until nothing is left
        pids = descendants(me)
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        _reap()
        time.sleep(0.002)


def _reap():
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _size(path):
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _tail(path):
    try:
        with open(path, "rb") as f:
            f.seek(max(0, _size(path) - MAX_TAIL_CHARS))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


class _Capture:
    """The test process's stdout and stderr, read from pipes into files, every byte counted (``total``).

    Each file keeps at most ``keep`` bytes (the output limit: the supervisor stops the tests once
    ``total`` passes it) and a file that cannot be written (a full tmpfs) is only counted, so no flood
    of output can stop the supervisor itself."""

    def __init__(self, paths, keep):
        self.files = {}
        self.kept = {}
        for fd, path in paths.items():
            os.set_blocking(fd, False)
            self.files[fd] = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            self.kept[fd] = 0
        self.keep = keep
        self.total = 0

    def _read(self, fd):
        """Read one chunk of what ``fd`` holds; False when there was nothing (the stream is closed at its end)."""
        try:
            data = os.read(fd, READ_CHUNK)
        except BlockingIOError:
            return False
        except OSError:
            data = b""
        if not data:
            os.close(self.files.pop(fd))
            os.close(fd)
            return False
        self.total += len(data)
        room = self.keep - self.kept[fd]
        if room > 0:
            try:
                self.kept[fd] += os.write(self.files[fd], data[:room])
            except OSError:
                self.kept[fd] = self.keep
        return True

    def wait(self, seconds):
        """Wait up to ``seconds`` for output, then read one chunk of each stream that has some."""
        if not self.files:
            time.sleep(seconds)
            return
        try:
            ready, _, _ = select.select(list(self.files), [], [], seconds)
        except InterruptedError:
            return
        for fd in ready:
            self._read(fd)

    def drain(self):
        """Read the rest; a stream whose last writer is still alive is left (nothing more is waited for)."""
        for fd in list(self.files):
            while self._read(fd):
                pass
        for fd in list(self.files):
            os.close(self.files.pop(fd))
            os.close(fd)


def supervise(spec):
    spec["code_dir"] = os.path.abspath(spec["code_dir"])
    spec["work"] = os.path.abspath(spec["work"])
    lim = spec["limits"]
    work = spec["work"]
    os.makedirs(work, exist_ok=True)
    try:  # PR_SET_CHILD_SUBREAPER = 36: orphans of the solution come back to us
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)
    except Exception:
        pass
    global _KEY
    _KEY = os.urandom(16).hex()
    key = _KEY
    records_path = os.path.join(work, ".records")
    record_fd = os.open(records_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o600)
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            os.close(out_r)
            os.close(err_r)
            child(spec, record_fd, out_w, err_w)
        except BaseException:
            code = 3
        os._exit(code)
    for fd in (record_fd, out_w, err_w):
        os.close(fd)
    me = os.getpid()
    pidns = bool(spec.get("pidns"))
    stop, detail, status, peak = None, "", None, 1
    wall = float(lim["wall_seconds"])
    out_limit = int(lim["output_bytes"])
    capture = _Capture({out_r: os.path.join(work, ".stdout"), err_r: os.path.join(work, ".stderr")}, out_limit)
    checks = 0
    while True:
        try:
            done, st = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            done, st = pid, 0
        if done:
            status = st
            break
        elapsed = time.monotonic() - start
        if elapsed > wall:
            stop, detail = "time", f"wall time over {wall:g} s"
        elif capture.total > out_limit:
            stop, detail = "output", f"output over {out_limit} bytes"
        else:
            checks += 1
            n = len(descendants(me)) if checks % 2 == 0 else 0
            peak = max(peak, n)
            if n > int(lim["processes"]):
                stop, detail = "processes", f"more than {lim['processes']} processes"
        if stop:
            kill_all(me, pidns)
            try:
                _, status = os.waitpid(pid, 0)
            except ChildProcessError:
                status = None
            break
        capture.wait(POLL_SECONDS)  # output wakes it at once; else a poll period passes
    wall_used = time.monotonic() - start
    kill_all(me, pidns)  # whatever the tests left behind
    _reap()
    capture.drain()  # what the pipes still hold (every writer is gone now)
    if stop is None and capture.total > out_limit:  # written in the pipes' last moments, still counted
        stop, detail = "output", f"output over {out_limit} bytes"
    if stop is None and status is not None and os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        if sig == signal.SIGXCPU:
            stop, detail = "cpu_time", f"CPU time over {lim['cpu_seconds']} s"
        elif sig == signal.SIGXFSZ:
            stop, detail = "file_size", f"a file grew over {lim['file_size_bytes']} bytes"
        elif sig == signal.SIGKILL:
            usage = resource.getrusage(resource.RUSAGE_CHILDREN)
            if usage.ru_utime + usage.ru_stime >= float(lim["cpu_seconds"]) - 0.5:
                stop, detail = "cpu_time", f"CPU time over {lim['cpu_seconds']} s"
            else:
                stop, detail = "killed", "the test process was killed (SIGKILL)"
        else:
            stop, detail = "killed", f"the test process died of signal {signal.Signals(sig).name}"
    elif stop is None and status is not None and os.WIFEXITED(status) and os.WEXITSTATUS(status) not in (0,):
        stop, detail = "exited", f"the tests stopped early (exit code {os.WEXITSTATUS(status)})"
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    collected, results, collect_error = None, {}, None
    try:
        with open(records_path, encoding="utf-8", errors="replace") as f:
            for line in f:
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                if not isinstance(rec, dict) or rec.get("key") != key:
                    continue
                if "collected" in rec and collected is None:
                    collected = [str(x) for x in rec["collected"]]
                    collect_error = rec.get("collect_error")
                elif "test" in rec and str(rec["test"]) not in results:
                    results[str(rec["test"])] = rec
    except OSError:
        pass
    failures = []
    passed = 0
    for name in collected or []:
        rec = results.get(name)
        if rec is None:
            failures.append({"test": name, "error": f"not run: {detail}" if stop else "not run"})
        elif rec.get("ok") is True:
            passed += 1
        else:
            error = str(rec.get("error") or "failed")[:MAX_ERROR_CHARS]
            failures.append({"test": name, "error": error})
    if stop is None and any("MemoryError" in f["error"] for f in failures):
        stop, detail = "memory", f"memory over {lim['memory_mb']} MB"
    elif stop is None and any("File too large" in f["error"] for f in failures):  # EFBIG: Python ignores SIGXFSZ
        stop, detail = "file_size", f"a file grew over {lim['file_size_bytes']} bytes"
    elif stop == "time" and peak >= int(lim["processes"]) - 2:
        detail += f" ({peak} processes: the process limit of {lim['processes']} was reached)"
    out_bytes = capture.total
    report = {
        "passed": passed,
        "total": len(collected or []),
        "failures": failures,
        "stop_reason": stop,
        "stop_detail": detail,
        "collect_error": collect_error or _no_tests(collected),
        "resources": {
            "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 3),
            "wall_seconds": round(wall_used, 3),
            "max_rss_mb": round(usage.ru_maxrss / 1024, 1),
            "peak_processes": peak,
            "output_bytes": out_bytes,
        },
        "stdout_tail": _tail(os.path.join(work, ".stdout")),
        "stderr_tail": _tail(os.path.join(work, ".stderr")),
    }
    sys.stdout.write("\n" + MARKER + json.dumps(report) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    supervise(json.loads(sys.argv[1]))
