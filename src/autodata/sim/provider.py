"""``provider: simulated``: the simulated ladder as a model provider of the runtime's registry.

The runtime never imports this package; :mod:`autodata.llm.providers` names :data:`PROVIDER` and
imports it the first time a config asks for a simulated endpoint. The provider builds one in-process
:class:`SimulatedBackend` per endpoint (same answers as ``serve-sim``, no HTTP) and puts the
simulator's version, fault rate and global seed into the endpoint's cache namespace, so answers of
an older simulator are never replayed as the current one's.
"""

from __future__ import annotations

import asyncio
from typing import Any

from autodata.llm.backends import Reply, _error_fields, _server_message, classify_status
from autodata.sim.ladder import LADDER, SIM_VERSION, SimulatedLadder


class SimulatedBackend:
    """The simulated ladder called in-process: same answers as ``serve-sim``, no HTTP."""

    def __init__(self, ladder: SimulatedLadder, latency_ms: float, label: str = "simulated") -> None:
        self.label = label
        self.ladder = ladder
        self.latency_s = latency_ms / 1000.0

    async def send(self, body: dict[str, Any]) -> Reply:
        """One chat-completion body; a non-200 answer raises the classified ``TransportError`` a server's would."""
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        status, payload = self.ladder.respond(body)
        if status != 200:
            code, param = _error_fields(payload)
            raise classify_status(status, _server_message(payload, f"HTTP {status}"), None, code=code, param=param)
        return Reply(data=payload, headers={"x-autodata-simulated": "true"})

    async def aclose(self) -> None:
        return None


class SimulatedProvider:
    """The registry entry for ``provider: simulated`` (see :mod:`autodata.llm.providers`)."""

    name = "simulated"

    def check(self, ep: Any) -> str | None:
        """Why the endpoint cannot be served (a model the ladder does not have), or None."""
        if ep.model not in LADDER:
            return f"{ep.model!r} is not a simulated model; expected one of: {', '.join(LADDER)}"
        return None

    def backends(self, ep: Any, global_seed: int) -> list[SimulatedBackend]:
        sim = ep.simulation
        ladder = SimulatedLadder(global_seed=global_seed, fault_rate=sim.fault_rate)
        return [SimulatedBackend(ladder, sim.latency_ms, label=f"simulated:{ep.model}")]

    def namespace(self, ep: Any, global_seed: int) -> str:
        """``SIM_VERSION|fault=…|seed=…``: what besides the request decides a simulated answer."""
        sim = ep.simulation
        return f"{SIM_VERSION}|fault={sim.fault_rate if sim else 0}|seed={global_seed}"


PROVIDER = SimulatedProvider()
