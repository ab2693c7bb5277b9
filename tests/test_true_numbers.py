"""Numbers that are true: a run's summary counts calls, tokens and cost from the call log, and counts
apart the calls whose server sent no usage (their tokens are estimates). The kill -9 case is in
test_run.py (``test_kill_9_mid_run_then_resume_equals_an_uninterrupted_run``) and test_optimize.py."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import yaml

from autodata.cli import default_config_text
from autodata.config import validate_config
from autodata.llm.runtime import ModelRuntime, make_backends
from autodata.loop.run import run as run_loop

PAPERS = Path(__file__).resolve().parents[1] / "examples" / "corpus" / "papers"


class NoUsage:
    """A server that sends no ``usage`` block (some proxies and older local servers)."""

    def __init__(self, inner) -> None:
        self.inner, self.label = inner, inner.label

    async def send(self, body):
        reply = await self.inner.send(body)
        reply.data.pop("usage", None)
        return reply

    async def aclose(self):
        await self.inner.aclose()


def test_calls_without_usage_are_counted_apart_and_totals_equal_the_call_log(tmp_path):
    data = yaml.safe_load(default_config_text())
    data["documents"] = {"paths": [str(PAPERS)], "max_tokens": 6000}
    data["models"]["weak"]["price"] = {"input_per_mtok": 2.0, "output_per_mtok": 4.0}
    cfg = validate_config(data)
    backends = {name: make_backends(name, ep, 0) for name, ep in cfg.models.items()}
    backends["weak"] = [NoUsage(b) for b in backends["weak"]]
    out = tmp_path / "run"

    async def go():
        rt = ModelRuntime(cfg, backends=backends, cache=None)
        try:
            return await run_loop(cfg, out, limit=2, runtime=rt, use_cache=False)
        finally:
            await rt.aclose()

    summary = asyncio.run(go())
    weak = summary["usage_by_role"]["weak_solver"]
    assert weak["calls"] > 0 and weak["estimated_usage_calls"] == weak["calls"]
    assert summary["estimated_usage_calls"] == weak["calls"]  # only the weak server left usage out
    db = sqlite3.connect(str(out / "run.db"))
    calls, tin, tout, cost, est = db.execute(
        "SELECT SUM(1 - cache_hit), SUM(input_tokens), SUM(output_tokens), SUM(cost_usd), SUM(estimated) FROM calls"
    ).fetchone()
    db.close()
    assert (summary["calls"], summary["input_tokens"], summary["output_tokens"]) == (calls, tin, tout)
    assert summary["estimated_usage_calls"] == est
    assert abs(summary["cost_usd"] - cost) < 1e-6 and cost > 0
