"""``loop.run.run`` called from Python (the API, the baselines) records what a CLI run records and
builds the executor the config names."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from autodata.config import load_config
from autodata.frozen import frozen_hash
from autodata.loop.executor import LocalExecutor
from autodata.loop.run import run
from autodata.store.run_store import RunStore

ROOT = Path(__file__).resolve().parents[1]


def test_a_run_started_from_python_records_the_frozen_hash_of_what_judged_it(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    cfg = load_config(ROOT / "examples" / "quickstart.yaml")
    out = tmp_path / "run"
    asyncio.run(run(cfg, out, limit=2))
    expected = frozen_hash(cfg)
    assert RunStore.open_existing(out).get_meta("frozen_hash") == expected
    rows = [json.loads(line) for line in (out / "examples.jsonl").read_text().splitlines()]
    assert rows and all(r["frozen_hash"] == expected for r in rows)


def test_without_an_executor_a_run_builds_the_one_executor_kind_names(tmp_path, monkeypatch):
    """``autodata baseline`` passes no executor; with ``executor.kind: ray`` it got a ValueError traceback."""
    import autodata.executors

    monkeypatch.chdir(ROOT)
    cfg = load_config(ROOT / "examples" / "quickstart.yaml")
    cfg = cfg.model_copy(update={"executor": cfg.executor.model_copy(update={"kind": "ray"})})
    built: list[str] = []

    def fake_make_executor(c, *, runtime=None, use_cache=True, roles=None):
        built.append(c.executor.kind)
        assert roles and "judge" in roles  # the run's own roles, for the pool's budget shares
        return LocalExecutor(c, runtime=runtime, use_cache=use_cache)

    monkeypatch.setattr(autodata.executors, "make_executor", fake_make_executor)
    summary = asyncio.run(run(cfg, tmp_path / "run", limit=1))
    assert built == ["ray"]
    docs = summary["documents"]
    assert docs["total"] == 1 and docs["accepted"] + docs["exhausted"] == 1 and docs["failed_this_session"] == 0
