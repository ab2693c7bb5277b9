"""Model providers other than an OpenAI-compatible server, looked up by the name a config gives.

An endpoint's ``provider`` names where its answers come from. ``openai`` (any OpenAI-compatible
server) is built into the runtime; every other provider is an entry in this registry: an object with

- ``check(ep) -> str | None``: what is wrong with the endpoint for this provider (e.g. a model it
  does not have), or None;
- ``backends(ep, global_seed) -> list[Backend]``: the transports the endpoint client sends through;
- ``namespace(ep, global_seed) -> str``: part of every cache key of the endpoint's calls. A provider
  whose answers depend on more than the request (a simulator's version, fault rate and seed) says so
  here, so a changed provider never replays answers cached from the old one.

Entries are registered as ``"module:attribute"`` strings and imported on first use, so the runtime
imports no provider's code until a config asks for it (``provider: simulated`` loads
``autodata.sim``). :func:`register_provider` adds or replaces an entry (a test double, a plug-in).
"""

from __future__ import annotations

import importlib
from typing import Any, Protocol

from autodata.errors import ConfigError


class Provider(Protocol):
    def check(self, ep: Any) -> str | None: ...

    def backends(self, ep: Any, global_seed: int) -> list[Any]: ...

    def namespace(self, ep: Any, global_seed: int) -> str: ...


# name -> "module:attribute" (imported lazily) or the provider object itself
_REGISTRY: dict[str, str | Provider] = {"simulated": "autodata.sim.provider:PROVIDER"}


def register_provider(name: str, provider: str | Provider) -> None:
    """Add or replace the provider called ``name`` (an object, or ``"module:attribute"`` loaded on use)."""
    _REGISTRY[name] = provider


def registered() -> list[str]:
    """The names of the registered providers, in registration order."""
    return list(_REGISTRY)


def get_provider(name: str) -> Provider:
    """The provider called ``name``, imported on first use.

    Raises :class:`ConfigError` naming the registered providers when there is no such entry.
    """
    entry = _REGISTRY.get(name)
    if entry is None:
        raise ConfigError(f"unknown model provider {name!r}; registered providers: openai, {', '.join(_REGISTRY)}")
    if isinstance(entry, str):
        module, _, attr = entry.partition(":")
        entry = getattr(importlib.import_module(module), attr)
        _REGISTRY[name] = entry
    return entry
