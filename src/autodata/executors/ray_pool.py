"""Episodes on a pool of Ray worker actors; the driver stays the one writer of the run store.

Each worker is an async actor that keeps its own :class:`ModelRuntime` (clients, limits, cache
handle) for its whole life, so connection pools and adaptive windows warm up once. Every
endpoint's budgets (concurrency, RPM, TPM) are divided among the workers, so the cluster as a whole
respects what the config says for one process. The driver sends a document to the least busy live
worker and awaits its :class:`DocumentResult`; when a worker dies under a document, the document is
sent to another worker (up to ``executor.max_attempts`` tries), and Ray restarts the dead actor.

The call cache is an SQLite file: on one machine every worker shares it (WAL allows that); WAL
does not work over network file systems, so on a multi-node cluster each node keeps its own file
at the same local path.
"""

from __future__ import annotations

import asyncio
import os
import socket
from typing import Any

import ray
from ray.exceptions import ActorDiedError, ActorUnavailableError, RayActorError

from autodata.config import Config
from autodata.documents import Document
from autodata.errors import ConfigError, UserError
from autodata.llm.usage import Counters, UsageMeter
from autodata.loop.document import DocumentJob, DocumentResult

WORKER_LOST = (RayActorError, ActorDiedError, ActorUnavailableError)


def _share(total: int, workers: int, index: int) -> int:
    """Worker ``index``'s part of ``total``: the parts differ by at most 1 and sum to ``total`` exactly."""
    return total // workers + (1 if index < total % workers else 0)


def check_shares(cfg: Config, workers: int, roles: dict[str, str] | None = None) -> None:
    """Every endpoint the run uses (``roles``, the run's; computed from the config when not given) must
    give each worker a share of at least 1 of each budget."""
    from autodata.loop.episode import run_roles

    small = [
        (value, f"models.{name}.{key} is {value}")
        for name in sorted(set((roles if roles is not None else run_roles(cfg)).values()))
        for key in ("max_concurrency", "rpm", "tpm")
        if (value := getattr(cfg.models[name], key)) is not None and value < workers
    ]
    if small:
        raise ConfigError(
            f"executor.workers: {workers} Ray workers, but a budget is smaller than that, and each worker needs "
            f"a share of at least 1; set executor.workers to at most {min(v for v, _ in small)}, "
            "or raise these budgets",
            details=[text for _, text in small],
        )


def share_budgets(cfg: Config, workers: int, index: int) -> Config:
    """The config worker ``index`` runs with: its exact share of every endpoint's budgets.

    The shares of all workers add up to what the config allows one process, so the cluster never has
    more requests in flight, and its sustained rates add up to the configured ones (each worker's
    token bucket still allows a burst of one request; ``check_shares`` keeps every share at least 1).
    """
    models = {}
    for name, ep in cfg.models.items():
        # max(1, ...) only matters for an endpoint this run never calls: check_shares covers the others
        conc = max(1, _share(ep.max_concurrency, workers, index))
        models[name] = ep.model_copy(
            update={
                "max_concurrency": conc,
                "min_concurrency": min(ep.min_concurrency, conc),
                "rpm": None if ep.rpm is None else max(1, _share(ep.rpm, workers, index)),
                "tpm": None if ep.tpm is None else max(1, _share(ep.tpm, workers, index)),
            }
        )
    # the driver's cache path, resolved here: workers may not share the driver's environment
    cache = cfg.cache.model_copy(update={"path": str(cfg.cache.resolved_path())})
    return cfg.model_copy(update={"models": models, "cache": cache})


def _check_reachable(address: str | None, timeout_s: float = 5.0) -> None:
    """Fail fast on a host:port nobody listens on (Ray itself would retry for minutes)."""
    if not address or address == "auto" or "://" in address or ":" not in address:
        return
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s):
            pass
    except (OSError, ValueError) as exc:
        raise UserError(f"executor.address: cannot reach the Ray cluster at {address}: {exc}") from None


@ray.remote(max_restarts=2, max_task_retries=0, num_cpus=0)
class DocumentWorker:
    """One worker process: a runtime for its life, episodes run concurrently on its event loop."""

    def __init__(self, job: DocumentJob, use_cache: bool) -> None:
        self.job, self.use_cache = job, use_cache
        self.executor: Any = None

    async def _ready(self) -> Any:
        if self.executor is None:  # built inside the actor's event loop, where its clients will live
            from autodata.loop.executor import LocalExecutor

            self.executor = LocalExecutor(self.job.cfg, use_cache=self.use_cache)
            await self.executor.start(self.job)
        return self.executor

    async def process(self, doc: Document) -> DocumentResult:
        return await (await self._ready()).process(doc)

    async def pid(self) -> int:
        return os.getpid()

    async def finish(self) -> tuple[dict[tuple[str, str], Counters], list[dict[str, Any]], int]:
        """This worker's usage counters, any call rows not yet returned, and the answers its call cache
        could not save; then it lets go of its clients."""
        if self.executor is None:
            return {}, [], 0
        rows = self.executor.rt.meter.rows()
        left = self.executor.leftover_calls()
        usage = await self.executor.close()
        self.executor = None
        return rows, left, int(usage.get("cache_write_errors", 0))


class RayExecutor:
    def __init__(self, cfg: Config, *, use_cache: bool = True, roles: dict[str, str] | None = None) -> None:
        check_shares(cfg, cfg.executor.workers, roles)
        self.cfg, self.use_cache = cfg, use_cache
        self.n = cfg.executor.workers
        self.workers: list[Any] = []
        self.busy: list[int] = []
        self.meter = UsageMeter()  # what the driver has seen so far (from returned call rows)
        self.started_ray = False
        self.leftover: list[dict[str, Any]] = []

    async def start(self, job: DocumentJob) -> None:
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no reports to anyone from a user's run
        if not ray.is_initialized():
            _check_reachable(self.cfg.executor.address)
            try:
                ray.init(
                    address=self.cfg.executor.address,
                    include_dashboard=False,
                    logging_level="warning",
                    log_to_driver=False,
                )
            except (ConnectionError, ValueError, RuntimeError) as exc:
                raise UserError(f"executor.address: cannot reach the Ray cluster: {exc}") from None
            self.started_ray = True
        self.workers = [
            DocumentWorker.remote(
                DocumentJob(share_budgets(job.cfg, self.n, i), job.settings, job.record, job.recipe_hash),
                self.use_cache,
            )
            for i in range(self.n)
        ]
        self.busy = [0] * self.n

    async def process(self, doc: Document) -> DocumentResult:
        last: Exception | None = None
        tried: set[int] = set()
        for _ in range(self.cfg.executor.max_attempts):
            candidates = [i for i in range(self.n) if i not in tried] or list(range(self.n))
            i = min(candidates, key=lambda k: self.busy[k])
            tried.add(i)
            self.busy[i] += 1
            try:
                res: DocumentResult = await self.workers[i].process.remote(doc)
            except WORKER_LOST as exc:  # the worker died under this document: send it elsewhere
                last = exc
                continue
            finally:
                self.busy[i] -= 1
            for row in res.calls:
                self.meter.count_row(row)
            return res
        lost = f"worker lost {self.cfg.executor.max_attempts} times: {type(last).__name__}: {last}"
        return DocumentResult.failed(doc, lost, kind="worker_lost")

    def totals(self) -> Counters:
        return self.meter.totals

    def leftover_calls(self) -> list[dict[str, Any]]:
        rows, self.leftover = self.leftover, []
        return rows

    async def close(self) -> dict[str, Any]:
        """The session's usage: every live worker's full counters (retries, failures, repairs included)."""
        final = UsageMeter()
        write_errors = 0
        results = await asyncio.gather(*(w.finish.remote() for w in self.workers), return_exceptions=True)
        for r in results:
            if isinstance(r, BaseException):
                continue
            rows, left, errors = r
            final.absorb(rows)
            self.leftover += left
            write_errors += errors
        for w in self.workers:
            ray.kill(w)
        self.workers = []
        if self.started_ray:
            ray.shutdown()
        # a worker that died (and was restarted) took its counters with it: the driver's tally of the
        # calls returned with each document then stands in, without retries and repairs
        complete = final.totals.calls >= self.meter.totals.calls
        usage = final.summary() if complete else self.meter.summary()
        usage["cache_write_errors"] = write_errors
        return usage
