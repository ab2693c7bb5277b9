"""Two costs of a run, kept apart: what its examples cost to make, and what was spent.

*Made*: every call behind the run's finished documents, from the call log in ``run.db`` (one row
per call, with its endpoint, role, cache hit, tokens and cost), counting for each document the calls
of the session that finished it. An answer served from the call cache costs nothing now, but it was
paid for once: it is valued at its endpoint's price in the run's config (tokens × price per million),
so a run answered entirely from the cache shows the same calls, tokens and cost to make as the run
that first paid for them.

*Spent*: what the sessions actually paid (calls sent to a server; cache hits free), all sessions
together (the run summary's ``calls`` and ``cost_usd``) and the latest one, from the same call log.
"""

from __future__ import annotations

from typing import Any

from autodata.store.run_store import RunStore

_MADE_SQL = """
SELECT c.endpoint, c.role, COUNT(*), SUM(c.cache_hit), SUM(c.input_tokens), SUM(c.output_tokens),
       SUM(CASE WHEN c.cache_hit = 0 THEN c.cost_usd ELSE 0 END),
       SUM(CASE WHEN c.cache_hit = 1 THEN c.input_tokens ELSE 0 END),
       SUM(CASE WHEN c.cache_hit = 1 THEN c.output_tokens ELSE 0 END)
FROM calls c JOIN documents d ON d.id = c.document_id
WHERE c.session IS (SELECT MAX(c2.session) FROM calls c2 WHERE c2.document_id = c.document_id)
GROUP BY c.endpoint, c.role
"""

FIELDS = ("calls", "cache_hits", "input_tokens", "output_tokens", "cost_usd")


def _zero() -> dict[str, float]:
    return dict.fromkeys(FIELDS, 0)


def prices(config: dict[str, Any]) -> dict[str, tuple[float, float]]:
    """Endpoint name -> (USD per million input tokens, per million output tokens), from a stored config."""
    out = {}
    for name, ep in (config.get("models") or {}).items():
        price = (ep or {}).get("price") or {}
        out[name] = (float(price.get("input_per_mtok") or 0.0), float(price.get("output_per_mtok") or 0.0))
    return out


def made(store: RunStore) -> dict[str, Any]:
    """What the finished documents cost to make: totals and ``by_role``, each with ``calls`` (answers
    used, from a server or the cache), ``cache_hits``, ``input_tokens``, ``output_tokens`` and
    ``cost_usd`` (paid calls at what they cost, cached answers at their endpoint's price)."""
    price = prices(store.get_meta("config") or {})
    total, by_role = _zero(), {}
    for endpoint, role, n, hits, tin, tout, paid, hit_in, hit_out in store.query(_MADE_SQL):
        pin, pout = price.get(endpoint, (0.0, 0.0))
        row = {
            "calls": int(n),
            "cache_hits": int(hits or 0),
            "input_tokens": int(tin or 0),
            "output_tokens": int(tout or 0),
            "cost_usd": float(paid or 0.0) + ((hit_in or 0) * pin + (hit_out or 0) * pout) / 1e6,
        }
        acc = by_role.setdefault(role, _zero())
        for k in FIELDS:
            acc[k] += row[k]
            total[k] += row[k]
    for row in (total, *by_role.values()):
        row["cost_usd"] = round(row["cost_usd"], 6)
    return {**total, "by_role": dict(sorted(by_role.items()))}


def last_session(store: RunStore) -> dict[str, Any]:
    """What the latest session paid, from the call log (so a killed session counts too): calls sent
    to a server, cache hits, their tokens and cost (zeros before any call)."""
    row = store.query(
        "SELECT SUM(1 - cache_hit), SUM(cache_hit), SUM(CASE WHEN cache_hit = 0 THEN input_tokens ELSE 0 END), "
        "SUM(CASE WHEN cache_hit = 0 THEN output_tokens ELSE 0 END), SUM(CASE WHEN cache_hit = 0 THEN cost_usd "
        "ELSE 0 END) FROM calls WHERE session = (SELECT MAX(rowid) FROM sessions)"
    )[0]
    values = [v or 0 for v in row]
    return {
        "calls": int(values[0]),
        "cache_hits": int(values[1]),
        "input_tokens": int(values[2]),
        "output_tokens": int(values[3]),
        "cost_usd": round(float(values[4]), 6),
    }


def costs(store: RunStore, accepted: int) -> dict[str, Any]:
    """The ``made`` and ``this_session`` blocks of a run summary, and the made cost per accepted example."""
    m = made(store)
    tokens = m["input_tokens"] + m["output_tokens"]
    return {
        "made": m,
        "this_session": last_session(store),
        "made_per_accepted_example": {
            "calls": round(m["calls"] / accepted, 2),
            "tokens": round(tokens / accepted),
            "cost_usd": round(m["cost_usd"] / accepted, 6),
        }
        if accepted
        else None,
    }
