"""Errors a user can act on.

Anything raised as a :class:`UserError` is shown by the CLI as a short message (no traceback) and
exits with code 2: the user has to change a file, a flag or an environment variable, not report a bug.
"""

from __future__ import annotations


class UserError(Exception):
    """A mistake in what the user gave us (config, flags, input files). Exit code 2, no traceback."""

    exit_code = 2

    def __init__(self, message: str, *, details: list[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []

    def render(self) -> str:
        lines = [self.message, *(f"  - {d}" for d in self.details)]
        return "\n".join(lines)


class ConfigError(UserError):
    """The configuration file or an override is invalid; details name dotted keys."""
