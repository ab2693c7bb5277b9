"""What a sandbox run takes and gives back, and the executor interface every sandbox implements."""

from __future__ import annotations

import asyncio
import threading
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

StopReason = Literal["time", "cpu_time", "memory", "processes", "output", "file_size", "killed", "exited"]

STOP_REASONS: dict[str, str] = {
    "time": "wall-clock time limit",
    "cpu_time": "CPU time limit",
    "memory": "memory (address space) limit",
    "processes": "process limit",
    "output": "output size limit",
    "file_size": "file size limit",
    "killed": "killed by a signal (the solution may have killed its own runner)",
    "exited": "the test process exited before the tests finished",
}


@dataclass(frozen=True, slots=True)
class Limits:
    """Resource limits of one run. Units: seconds, megabytes, bytes, processes.

    ``cpu_seconds`` (RLIMIT_CPU of the test process), ``wall_seconds`` (the supervisor's clock; the
    host adds a grace period and kills the whole sandbox after it), ``memory_mb`` (RLIMIT_AS, per
    process), ``processes`` (RLIMIT_NPROC inside the sandbox's user namespace, and the supervisor's
    count of descendants), ``output_bytes`` (stdout + stderr), ``file_size_bytes`` (RLIMIT_FSIZE,
    any one file), ``tmp_bytes`` (size of the private temporary directory, a tmpfs under bwrap).
    """

    cpu_seconds: int = 10
    wall_seconds: float = 20.0
    memory_mb: int = 512
    processes: int = 32
    output_bytes: int = 1_000_000
    file_size_bytes: int = 16_000_000
    tmp_bytes: int = 64_000_000

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class TestFailure:
    test: str
    error: str

    def to_dict(self) -> dict[str, str]:
        return {"test": self.test, "error": self.error}


@dataclass(frozen=True, slots=True)
class SandboxResult:
    """One solution against one test file.

    ``passed``/``total`` count tests (``total`` is known even when a run is stopped half way: the
    names are collected first); ``stop_reason`` is set when a limit stopped the run (a key of
    :data:`STOP_REASONS`); ``infra_error`` is set when the sandbox itself could not run (bwrap
    refused, the remote service failed): such a result says nothing about the solution and must
    not be scored. ``resources``: ``cpu_seconds``, ``wall_seconds``, ``max_rss_mb``,
    ``peak_processes``, ``output_bytes`` (inside the sandbox) and ``host_seconds`` (the whole run as
    the host saw it, sandbox start-up included). ``isolation`` says which sandbox ran it.
    """

    passed: int
    total: int
    failures: tuple[TestFailure, ...] = ()
    stop_reason: str | None = None
    stop_detail: str = ""
    collect_error: str | None = None
    resources: dict[str, float] = field(default_factory=dict)
    isolation: str = ""
    infra_error: str | None = None
    stdout_tail: str = ""
    stderr_tail: str = ""

    @property
    def pass_rate(self) -> float:
        """passed / total, and 0.0 for a run with no tests collected."""
        return self.passed / self.total if self.total else 0.0

    @property
    def all_passed(self) -> bool:
        return self.total > 0 and self.passed == self.total and self.infra_error is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "total": self.total,
            "pass_rate": round(self.pass_rate, 6),
            "failures": [f.to_dict() for f in self.failures],
            "stop_reason": self.stop_reason,
            "stop_detail": self.stop_detail,
            "collect_error": self.collect_error,
            "resources": self.resources,
            "isolation": self.isolation,
            "infra_error": self.infra_error,
        }

    @classmethod
    def from_report(cls, report: dict[str, Any], isolation: str) -> SandboxResult:
        """From the in-sandbox runner's JSON report (``runner.py``)."""
        return cls(
            passed=int(report.get("passed", 0)),
            total=int(report.get("total", 0)),
            failures=tuple(
                TestFailure(str(f.get("test", "?")), str(f.get("error", ""))) for f in report.get("failures") or []
            ),
            stop_reason=report.get("stop_reason"),
            stop_detail=str(report.get("stop_detail") or ""),
            collect_error=report.get("collect_error"),
            resources=dict(report.get("resources") or {}),
            isolation=isolation,
            stdout_tail=str(report.get("stdout_tail") or ""),
            stderr_tail=str(report.get("stderr_tail") or ""),
        )

    @classmethod
    def infra(cls, message: str, isolation: str, resources: dict[str, float] | None = None) -> SandboxResult:
        return cls(0, 0, isolation=isolation, infra_error=message, resources=resources or {})


class SandboxUnavailable(RuntimeError):
    """The sandbox cannot run on this machine (e.g. ``bwrap`` missing or user namespaces refused)."""


class SandboxExecutor(ABC):
    """Runs untrusted code against tests somewhere other than the autodata process.

    Implementations: :class:`~autodata.sandbox.local.BubblewrapExecutor` (the default on Linux),
    :class:`~autodata.sandbox.local.SubprocessExecutor` (weaker, opt-in) and
    :class:`~autodata.sandbox.http.HttpSandboxExecutor` (a remote SandboxFusion-style service).
    """

    name: str = "sandbox"
    isolation: str = ""
    weaker: bool = False  # True: summaries must say the code ran without filesystem/network isolation

    def __init__(self, limits: Limits | None = None, *, workers: int = 2) -> None:
        self.limits = limits or Limits()
        self.workers = workers
        self._slots = threading.BoundedSemaphore(workers)

    def __getstate__(self) -> dict[str, Any]:  # picklable (Ray workers get the run's settings)
        state = dict(self.__dict__)
        state.pop("_slots", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._slots = threading.BoundedSemaphore(self.workers)

    @abstractmethod
    def run(self, solution_code: str, tests_code: str, limits: Limits | None = None) -> SandboxResult:
        """Run ``tests_code`` against ``solution_code`` (importable as module ``solution``); blocking."""

    async def arun(self, solution_code: str, tests_code: str, limits: Limits | None = None) -> SandboxResult:
        """:meth:`run` off the event loop (a thread; the work happens in another process); at most
        ``workers`` runs at once per executor."""

        def bounded() -> SandboxResult:
            with self._slots:
                return self.run(solution_code, tests_code, limits)

        return await asyncio.to_thread(bounded)

    def check(self) -> None:
        """Raise :class:`SandboxUnavailable` with the fix when this sandbox cannot run here."""
        return None
