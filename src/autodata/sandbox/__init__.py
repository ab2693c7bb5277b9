"""Running untrusted code against tests, never in the autodata process.

``SandboxExecutor.run(solution_code, tests_code, limits) -> SandboxResult``; implementations:
:class:`BubblewrapExecutor` (default), :class:`SubprocessExecutor` (weaker, opt-in),
:class:`HttpSandboxExecutor` (a remote SandboxFusion-style service). :func:`make_executor` builds
the one a config names. See ``docs/sandbox.md``.
"""

from autodata.sandbox.local import BubblewrapExecutor, SubprocessExecutor
from autodata.sandbox.types import (
    STOP_REASONS,
    Limits,
    SandboxExecutor,
    SandboxResult,
    SandboxUnavailable,
    TestFailure,
)

__all__ = [
    "STOP_REASONS",
    "BubblewrapExecutor",
    "Limits",
    "SandboxExecutor",
    "SandboxResult",
    "SandboxUnavailable",
    "SubprocessExecutor",
    "TestFailure",
    "executor_from_config",
    "make_executor",
]


def make_executor(
    kind: str = "bwrap",
    limits: Limits | None = None,
    *,
    url: str | None = None,
    api_key_env: str | None = None,
    workers: int = 2,
) -> SandboxExecutor:
    """The executor a config's ``sandbox`` section names (``kind``: bwrap, subprocess or http)."""
    if kind == "bwrap":
        return BubblewrapExecutor(limits, workers=workers)
    if kind == "subprocess":
        return SubprocessExecutor(limits, workers=workers)
    if kind == "http":
        from autodata.sandbox.http import HttpSandboxExecutor

        if not url:
            raise ValueError("sandbox.kind: http needs sandbox.url")
        return HttpSandboxExecutor(url, limits, api_key_env=api_key_env, workers=workers)
    raise ValueError(f"unknown sandbox kind {kind!r}; expected one of: bwrap, subprocess, http")


def executor_from_config(section: object) -> SandboxExecutor:
    """:func:`make_executor` from a validated ``config.SandboxConfig`` (duck-typed: no config import)."""
    lim = section.limits  # type: ignore[attr-defined]
    limits = Limits(**{k: getattr(lim, k) for k in Limits.__dataclass_fields__})
    return make_executor(
        section.kind,  # type: ignore[attr-defined]
        limits,
        url=section.url,  # type: ignore[attr-defined]
        api_key_env=section.api_key_env,  # type: ignore[attr-defined]
        workers=section.workers,  # type: ignore[attr-defined]
    )
