"""Where episodes run: the executor interface, and the default one (this process, one event loop).

The run driver (``loop.run.run``) streams documents, bounds how many are in flight and is the only
writer of the run store; an executor turns one document into a :class:`DocumentResult` with
``loop.document.process_document``. The local
executor runs episodes on this process's event loop with one :class:`ModelRuntime`; the Ray executor
(``autodata.executors.ray``) runs them on a pool of worker actors and has the same interface, so
the outputs of both are the same.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any, Protocol

from autodata.config import Config
from autodata.documents import Document
from autodata.llm.runtime import ModelRuntime
from autodata.llm.usage import Counters
from autodata.loop.document import DocumentJob, DocumentResult, process_document


class Executor(Protocol):
    async def start(self, job: DocumentJob) -> None: ...

    async def process(self, doc: Document) -> DocumentResult: ...

    def totals(self) -> Counters: ...

    def leftover_calls(self) -> list[dict[str, Any]]: ...

    def simulated_endpoints(self) -> list[str]: ...

    async def close(self) -> dict[str, Any]:
        """Release resources; returns the session's usage summary (the meter's format)."""
        ...


class LocalExecutor:
    """Episodes on this event loop; the call log is kept per document until its episode is stored."""

    def __init__(self, cfg: Config, *, runtime: ModelRuntime | None = None, use_cache: bool = True) -> None:
        self.own = runtime is None
        self.rt = runtime or ModelRuntime.from_config(cfg, use_cache=use_cache)
        self.pending: dict[str | None, list[dict[str, Any]]] = {}
        self.job: DocumentJob | None = None
        self.endpoint_names: list[str] = []
        self.on_call: Any = None  # told after every call the meter logs (the driver's admission wakes up)

    @property
    def on_wait(self) -> Any:
        """(endpoint, seconds, why), told when a call waits a second or more (a server's Retry-After,
        backoff): the runtime's hook, so a progress line can show the pause."""
        return self.rt.on_wait

    @on_wait.setter
    def on_wait(self, hook: Any) -> None:
        self.rt.on_wait = hook

    async def start(self, job: DocumentJob) -> None:
        self.job = job
        eps = job.settings.endpoints
        self.endpoint_names = sorted({n for n in (getattr(eps, f.name) for f in fields(eps)) if n})

        def listener(row: dict[str, Any]) -> None:
            self.pending.setdefault(row["document_id"], []).append(row)
            if self.on_call is not None:
                self.on_call()

        self.rt.meter.listener = listener

    def has_room(self) -> bool:
        """Admission by budget: some endpoint of the run has a free slot (requests in flight and queued
        below its ``max_concurrency``), and none has a full window's worth of requests queued (more
        documents would only wait there, holding memory)."""
        free = False
        for name in self.endpoint_names:
            w = self.rt.endpoint(name).window
            if w.waiting >= w.maximum:
                return False
            free = free or w.in_flight + w.waiting < w.maximum
        return free

    async def process(self, doc: Document) -> DocumentResult:
        assert self.job is not None, "start() first"
        res = await process_document(self.rt, doc, self.job)
        res.calls = self.pending.pop(doc.id, [])
        return res

    def totals(self) -> Counters:
        return self.rt.meter.totals

    def leftover_calls(self) -> list[dict[str, Any]]:
        rows = [row for rows in self.pending.values() for row in rows]
        self.pending.clear()
        return rows

    def simulated_endpoints(self) -> list[str]:
        """Endpoints whose answers are simulated (``ModelRuntime.simulated_endpoints``)."""
        return self.rt.simulated_endpoints()

    async def close(self) -> dict[str, Any]:
        self.rt.meter.listener = None
        usage = self.rt.meter.summary()
        if self.own:
            await self.rt.aclose()
            # known only once the cache has committed its last batch
            usage["cache_write_errors"] = self.rt.cache.write_errors if self.rt.cache is not None else 0
        return usage
