"""One writer per output directory: an OS lock on ``DIR/.autodata.lock`` held while a command writes.

Two ``autodata run`` (or ``optimize``, ``baseline``) on the same ``--out`` at once would both call
every model and pay twice, and interleave their writes. The lock is ``flock(2)`` on a file in the
directory: the kernel releases it when the holder's process ends in any way (``kill -9``
included), so a lock left by a killed process is simply taken over, with no pid-liveness guessing.
The file also holds who took it (pid, command, start time) for the message the second caller gets.
Readers (``status``, ``review``, ``report``, ``export``) do not take it.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from autodata.errors import UserError

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: no lock (documented)
    fcntl = None  # type: ignore[assignment]

LOCK_NAME = ".autodata.lock"


class DirLock:
    """``with DirLock(out_dir, "run"):`` -- exclusive use of ``out_dir``; :class:`UserError` (exit 2)
    naming the holder when another process has it. Creates the directory."""

    def __init__(self, directory: str | Path, command: str) -> None:
        self.dir, self.command = Path(directory), command
        self._fd: int | None = None

    @property
    def path(self) -> Path:
        return self.dir / LOCK_NAME

    def acquire(self) -> None:
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise UserError(f"cannot use {self.dir} as the output directory: {exc}") from None
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                holder = _describe(os.read(fd, 4096))
                os.close(fd)
                raise UserError(
                    f"{self.dir} is in use by another autodata process ({holder}); two commands writing one "
                    "directory would call every model twice. Wait for it to finish, stop it, or use another --out."
                ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": os.getpid(), "command": self.command, "started": time.time()}).encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def __enter__(self) -> DirLock:
        self.acquire()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()


def _describe(raw: bytes) -> str:
    try:
        info = json.loads(raw.decode("utf-8"))
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(info["started"])))
        return f"`autodata {info['command']}`, pid {info['pid']}, started {started}"
    except (ValueError, KeyError, TypeError):
        return "holder unknown"
