"""Episodes on a pool of Ray worker actors; the driver stays the one writer of the run store.

Each worker is an async actor that keeps its own :class:`ModelRuntime` (clients, limits, cache
handle) for its whole life, so connection pools and adaptive windows warm up once. Every
endpoint's budgets (concurrency, RPM, TPM) are divided among the workers, so the cluster as a whole
respects what the config says for one process. Under ``loop.concurrency: auto`` each worker admits
the documents it was sent by its own share of the windows (as one process does), and the driver keeps
a few waiting at each; with a number, the driver caps the documents in flight and sends each to the
least busy worker. The driver awaits each :class:`DocumentResult`; when a worker dies under a document,
the document is sent to another worker (up to ``executor.max_attempts`` tries), and Ray restarts the
dead actor. Workers report their call rows as they come back (the driver writes them to the run
store's call log), long waits and the endpoints that said they are simulated (:meth:`DocumentWorker.poll`).

The call cache is an SQLite file: on one machine every worker shares it (WAL allows that); WAL
does not work over network file systems, so on a multi-node cluster each node keeps its own file
at the same local path.
"""

from __future__ import annotations

import asyncio
import dataclasses
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


WORKER_QUEUE = 4  # documents each worker holds beyond those it runs, under budget admission
POLL_S = 0.25  # a worker's report comes at least this often (call rows); sooner when a document starts or a wait begins
MAX_WORKER_CALLS = 4096 + 16  # documents in flight at most (loop.concurrency) plus the driver's report calls


@ray.remote(max_restarts=2, max_task_retries=0, num_cpus=0, max_concurrency=MAX_WORKER_CALLS)
class DocumentWorker:
    """One worker process: a runtime for its life, episodes run concurrently on its event loop.

    With ``gate`` (``loop.concurrency: auto``) a document the driver sends waits here until this worker's
    own share of the endpoint windows has room (:meth:`LocalExecutor.has_room`, the local executor's
    admission, on the windows it concerns, with no delay); the driver keeps a few documents waiting here
    (``WORKER_QUEUE``), so a freed slot is filled at once. :meth:`poll` reports to the driver what it must
    know as it happens: the call rows (the run store's call log, written by the driver alone), the
    documents that started, long waits, and the endpoints whose server said it is the simulator.
    """

    def __init__(self, job: DocumentJob, use_cache: bool, gate: bool = False) -> None:
        self.job, self.use_cache, self.gate = job, use_cache, gate
        self.executor: Any = None
        self.running = 0  # documents past the gate
        self.started: list[str] = []  # documents past the gate since the last report
        self.waits: list[tuple[str, float, str]] = []  # (endpoint, seconds, why) since the last report
        self.news = asyncio.Event()  # something the driver should hear now (a document started, a wait)
        self.changed = asyncio.Event()  # a call came back or a document ended: the gate looks again
        self.admitting = asyncio.Lock()

    async def _ready(self) -> Any:
        if self.executor is None:  # built inside the actor's event loop, where its clients will live
            from autodata.loop.executor import LocalExecutor

            ex = LocalExecutor(self.job.cfg, use_cache=self.use_cache)
            await ex.start(self.job)
            ex.on_call = self.changed.set
            ex.on_wait = self._waiting
            self.executor = ex
        return self.executor

    def _waiting(self, endpoint: str, seconds: float, why: str) -> None:
        self.waits.append((endpoint, seconds, why))
        self.news.set()

    async def process(self, doc: Document) -> DocumentResult:
        ex = await self._ready()
        async with self.admitting:  # one admission at a time: each sees the windows its predecessor's call left
            while self.gate and self.running and not ex.has_room():
                self.changed.clear()
                await self.changed.wait()
            self.running += 1
            self.started.append(doc.id)
            self.news.set()
            task = asyncio.ensure_future(ex.process(doc))
            await asyncio.sleep(0)  # its first call reaches its endpoint's window before the next admission
        try:
            return await task
        finally:
            self.running -= 1
            self.changed.set()

    async def poll(self, timeout: float) -> dict[str, Any]:
        """What happened since the last report, once there is news or after ``timeout`` seconds: call rows,
        documents started, waits (endpoint, seconds, why), endpoints that said they are simulated."""
        try:
            await asyncio.wait_for(self.news.wait(), timeout)
        except TimeoutError:
            pass
        self.news.clear()
        started, self.started = self.started, []
        waits, self.waits = self.waits, []
        ex = self.executor
        return {
            "started": started,
            "waits": waits,
            "rows": ex.leftover_calls() if ex is not None else [],
            "simulated": ex.simulated_endpoints() if ex is not None else [],
        }

    async def wake(self) -> None:
        """End a pending :meth:`poll` now (the driver is closing)."""
        self.news.set()

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
    """Documents on ``executor.workers`` worker actors (see the module's docstring).

    The driver's side of the reports: a task per worker keeps one :meth:`DocumentWorker.poll` pending and
    folds each report in (call rows into :meth:`leftover_calls`, which the driver writes to the call log
    every half second, as the local executor's; waits to ``on_wait``; ``on_call`` woken for admission).
    Under ``loop.concurrency: auto`` :meth:`has_room` is true while some worker holds fewer than
    ``WORKER_QUEUE`` documents it has not started, and a document goes to the worker holding fewest.
    """

    def __init__(self, cfg: Config, *, use_cache: bool = True, roles: dict[str, str] | None = None) -> None:
        check_shares(cfg, cfg.executor.workers, roles)
        self.cfg, self.use_cache = cfg, use_cache
        self.n = cfg.executor.workers
        self.gate = cfg.loop.concurrency == "auto"
        self.workers: list[Any] = []
        self.busy: list[int] = []
        self.unstarted: list[set[str]] = []  # per worker: documents sent that it has not reported started
        self.meter = UsageMeter()  # what the driver has seen so far (from the workers' call rows)
        self.started_ray = False
        self.leftover: list[dict[str, Any]] = []
        self.simulated: set[str] = set()
        self.on_call: Any = None  # told after every report (the driver's admission looks again)
        self.on_wait: Any = None  # (endpoint, seconds, why): a worker waits on a server (Retry-After, backoff)
        self.pumps: list[asyncio.Task[None]] = []
        self.closing = False

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
                dataclasses.replace(job, cfg=share_budgets(job.cfg, self.n, i)),
                self.use_cache,
                self.gate,
            )
            for i in range(self.n)
        ]
        self.busy = [0] * self.n
        self.unstarted = [set() for _ in range(self.n)]
        self.closing = False
        self.pumps = [asyncio.create_task(self._pump(i)) for i in range(self.n)]

    async def _pump(self, i: int) -> None:
        """Worker ``i``'s reports, one pending at a time, until the executor closes."""
        while True:
            try:
                report = await self.workers[i].poll.remote(0.0 if self.closing else POLL_S)
            except Exception:  # dead or restarting (WORKER_LOST): its calls since its last report died with it
                if self.closing:
                    return
                await asyncio.sleep(POLL_S)
                continue
            self._take(i, report)
            if self.closing:
                return

    def _take(self, i: int, report: dict[str, Any]) -> None:
        self.unstarted[i].difference_update(report["started"])
        for row in report["rows"]:
            self.meter.count_row(row)
        self.leftover += report["rows"]
        self.simulated.update(report["simulated"])
        if self.on_wait is not None:
            for endpoint, seconds, why in report["waits"]:
                self.on_wait(endpoint, seconds, why)
        if self.on_call is not None:
            self.on_call()

    def has_room(self) -> bool:
        """Budget admission on Ray: some worker holds fewer than ``WORKER_QUEUE`` documents not yet started
        (each worker starts them as its share of the endpoint windows frees up)."""
        return any(len(u) < WORKER_QUEUE for u in self.unstarted)

    async def process(self, doc: Document) -> DocumentResult:
        last: Exception | None = None
        tried: set[int] = set()
        for _ in range(self.cfg.executor.max_attempts):
            candidates = [i for i in range(self.n) if i not in tried] or list(range(self.n))
            i = min(candidates, key=lambda k: (len(self.unstarted[k]), self.busy[k]))
            tried.add(i)
            self.busy[i] += 1
            self.unstarted[i].add(doc.id)
            try:
                res: DocumentResult = await self.workers[i].process.remote(doc)
            except WORKER_LOST as exc:  # the worker died under this document: send it elsewhere
                last = exc
                continue
            finally:
                self.busy[i] -= 1
                self.unstarted[i].discard(doc.id)
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

    def simulated_endpoints(self) -> list[str]:
        """Endpoints a worker found simulated (``provider: simulated``, or a server's ``system_fingerprint``)."""
        return sorted(self.simulated)

    async def close(self) -> dict[str, Any]:
        """The session's usage: every live worker's full counters (retries, failures, repairs included).
        The workers' last reports and call rows are folded in first (:meth:`leftover_calls` has them)."""
        self.closing = True
        for w in self.workers:
            w.wake.remote()
        await asyncio.gather(*self.pumps, return_exceptions=True)
        self.pumps = []
        final = UsageMeter()
        write_errors = 0
        results = await asyncio.gather(*(w.finish.remote() for w in self.workers), return_exceptions=True)
        for r in results:
            if isinstance(r, BaseException):
                continue
            rows, left, errors = r
            final.absorb(rows)
            for row in left:
                self.meter.count_row(row)
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
