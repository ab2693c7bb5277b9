"""Live usage and cost, per endpoint and per role.

Counters are plain integers updated from the event loop (no locks needed in one process); progress
bars read :meth:`UsageMeter.totals` as often as they like, summaries use :meth:`UsageMeter.rows`.
Cache hits are counted apart: they cost nothing now, and the money they saved is shown.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import asdict, dataclass, field
from typing import Any

from autodata.config import Price
from autodata.llm.types import Usage


@dataclass(slots=True)
class Counters:
    calls: int = 0  # answers received from a server
    cache_hits: int = 0
    failures: int = 0  # calls that finally failed
    retries: int = 0  # extra attempts made
    invalid_outputs: int = 0  # structured answers rejected and asked again
    repaired_outputs: int = 0  # structured answers accepted after a repair
    input_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    cost_usd: float = 0.0
    saved_usd: float = 0.0  # what the cache hits would have cost
    latency_s: float = 0.0
    estimated_calls: int = 0  # answers without a (complete) usage block: their tokens are our estimate
    estimated_tokens: int = 0  # how many of input_tokens + output_tokens are estimated
    step_downs: int = 0  # json_schema -> json_object because the server ignored the schema
    schema_fallbacks: int = 0  # single requests sent in JSON mode because the server refused their schema
    errors: dict[str, int] = field(default_factory=dict)
    problems: dict[str, int] = field(default_factory=dict)  # answers without a usable answer, by code

    def add(self, other: Counters) -> None:
        for name in (
            "calls",
            "cache_hits",
            "failures",
            "retries",
            "invalid_outputs",
            "repaired_outputs",
            "input_tokens",
            "output_tokens",
            "reasoning_tokens",
            "cost_usd",
            "saved_usd",
            "latency_s",
            "estimated_calls",
            "estimated_tokens",
            "step_downs",
            "schema_fallbacks",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for k, v in other.errors.items():
            self.errors[k] = self.errors.get(k, 0) + v
        for k, v in other.problems.items():
            self.problems[k] = self.problems.get(k, 0) + v

    def to_dict(self) -> dict[str, object]:
        d = asdict(self)
        d["cost_usd"] = round(self.cost_usd, 6)
        d["saved_usd"] = round(self.saved_usd, 6)
        d["latency_s"] = round(self.latency_s, 3)
        return d


def cost_of(usage: Usage, price: Price) -> float:
    return (usage.input_tokens * price.input_per_mtok + usage.output_tokens * price.output_per_mtok) / 1e6


# The document a call is made for, set by the loop around each episode; a call log (``run.db``'s
# ``calls`` table) attributes every call to it without threading an id through every role.
current_document: ContextVar[str | None] = ContextVar("current_document", default=None)

CallListener = Callable[[dict[str, Any]], None]


class UsageMeter:
    def __init__(self) -> None:
        self._rows: dict[tuple[str, str], Counters] = {}
        self._total = Counters()
        self.listener: CallListener | None = None  # told about every call and cache hit, when set

    def _tell(
        self,
        endpoint: str,
        role: str,
        usage: Usage,
        cost: float,
        latency_s: float,
        hit: bool,
        problem: str | None = None,
    ) -> None:
        if self.listener is not None:
            self.listener(
                {
                    "at": time.time(),
                    "document_id": current_document.get(),
                    "endpoint": endpoint,
                    "role": role,
                    "cache_hit": hit,
                    "input_tokens": usage.input_tokens,
                    "output_tokens": usage.output_tokens,
                    "cost_usd": 0.0 if hit else cost,
                    "latency_s": latency_s,
                    "estimated": usage.estimated,
                    "problem": problem.split(":", 1)[0] if problem else None,
                }
            )

    def _row(self, endpoint: str, role: str) -> Counters:
        key = (endpoint, role)
        row = self._rows.get(key)
        if row is None:
            row = self._rows[key] = Counters()
        return row

    def _both(self, endpoint: str, role: str) -> tuple[Counters, Counters]:
        return self._row(endpoint, role), self._total

    def count_row(self, row: dict[str, Any]) -> None:
        """Count one call-log row (the shape ``_tell`` sends): how a driver tallies its workers' calls."""
        for c in self._both(row["endpoint"], row["role"]):
            if row["cache_hit"]:
                c.cache_hits += 1
                continue
            c.calls += 1
            c.input_tokens += row["input_tokens"]
            c.output_tokens += row["output_tokens"]
            c.cost_usd += row["cost_usd"]
            c.latency_s += row["latency_s"]
            if row.get("estimated"):
                c.estimated_calls += 1
                c.estimated_tokens += row["input_tokens"] + row["output_tokens"]
            if row.get("problem"):
                c.problems[row["problem"]] = c.problems.get(row["problem"], 0) + 1

    def record_call(
        self, endpoint: str, role: str, usage: Usage, price: Price, latency_s: float, *, problem: str | None = None
    ) -> None:
        """One answer received. ``problem``: why it holds no usable answer (``Completion.problem``)."""
        cost = cost_of(usage, price)
        code = problem.split(":", 1)[0] if problem else None
        for c in self._both(endpoint, role):
            c.calls += 1
            c.input_tokens += usage.input_tokens
            c.output_tokens += usage.output_tokens
            c.reasoning_tokens += usage.reasoning_tokens
            c.cost_usd += cost
            c.latency_s += latency_s
            if usage.estimated:
                c.estimated_calls += 1
                c.estimated_tokens += usage.input_tokens + usage.output_tokens
            if code:
                c.problems[code] = c.problems.get(code, 0) + 1
        self._tell(endpoint, role, usage, cost, latency_s, hit=False, problem=problem)

    def record_step_down(self, endpoint: str, role: str) -> None:
        """The endpoint went from json_schema to json_object (the server ignored the schema); counted
        under the role whose call found out."""
        for c in self._both(endpoint, role):
            c.step_downs += 1

    def record_schema_fallback(self, endpoint: str, role: str) -> None:
        for c in self._both(endpoint, role):
            c.schema_fallbacks += 1

    def record_hit(self, endpoint: str, role: str, usage: Usage, price: Price) -> None:
        saved = cost_of(usage, price)
        for c in self._both(endpoint, role):
            c.cache_hits += 1
            c.saved_usd += saved
        self._tell(endpoint, role, usage, saved, 0.0, hit=True)

    def record_retry(self, endpoint: str, role: str, kind: str) -> None:
        for c in self._both(endpoint, role):
            c.retries += 1
            c.errors[kind] = c.errors.get(kind, 0) + 1

    def record_failure(self, endpoint: str, role: str, kind: str) -> None:
        for c in self._both(endpoint, role):
            c.failures += 1
            c.errors[kind] = c.errors.get(kind, 0) + 1

    def record_invalid(self, endpoint: str, role: str) -> None:
        for c in self._both(endpoint, role):
            c.invalid_outputs += 1

    def record_repaired(self, endpoint: str, role: str) -> None:
        for c in self._both(endpoint, role):
            c.repaired_outputs += 1

    def absorb(self, rows: dict[tuple[str, str], Counters]) -> None:
        """Add another meter's rows (a worker's, in scale-out) to this one."""
        for (endpoint, role), counters in rows.items():
            for c in self._both(endpoint, role):
                c.add(counters)

    @property
    def totals(self) -> Counters:
        return self._total

    def rows(self) -> dict[tuple[str, str], Counters]:
        return dict(self._rows)

    def by_endpoint(self) -> dict[str, Counters]:
        return self._group(0)

    def by_role(self) -> dict[str, Counters]:
        return self._group(1)

    def _group(self, index: int) -> dict[str, Counters]:
        out: dict[str, Counters] = {}
        for key, row in self._rows.items():
            out.setdefault(key[index], Counters()).add(row)
        return out

    def summary(self) -> dict[str, object]:
        return {
            "total": self._total.to_dict(),
            "by_endpoint": {k: v.to_dict() for k, v in sorted(self.by_endpoint().items())},
            "by_role": {k: v.to_dict() for k, v in sorted(self.by_role().items())},
        }
