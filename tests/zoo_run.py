"""Running `autodata run` against one emulated server (tests/server_zoo.py) on 127.0.0.1: the server on a
thread of its own, the config a user would write for it, and the outcome as numbers and messages. Used by
tests/test_server_zoo.py and by ``bench/zoo.py`` (the table of outcomes per server in docs/servers.md)."""

from __future__ import annotations

import asyncio
import json
import shutil
import threading
from pathlib import Path
from typing import Any

import yaml
from typer.testing import CliRunner

import server_zoo as zoo
from autodata.cli import app
from autodata.errors import UserError
from conftest import PROXY_VARS, ladder_models, ladder_roles  # noqa: F401  (PROXY_VARS: re-exported for bench/zoo.py)
from faultserver import FaultServer

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted((ROOT / "examples/corpus/papers").glob("*"))[:2]


class ServerThread:
    """A FaultServer on its own event loop in a thread, so the CLI (which runs its own loop) can call it."""

    def __init__(self, mode: zoo.Mode, plan: Any = None) -> None:
        self.loop = asyncio.new_event_loop()
        self.server = FaultServer(plan=plan, shape=mode.shape, models=mode.models)
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> FaultServer:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start(), self.loop).result(10)
        return self.server

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


def config_for(mode: zoo.Mode, port: int, docs: Path, **overrides: Any) -> dict[str, Any]:
    url = f"http://127.0.0.1:{port}{mode.path_prefix}"
    if mode.name == "azure":
        url += "?api-version=2024-10-21"

    def ep(model: str, **extra: Any) -> dict[str, Any]:
        d: dict[str, Any] = {
            "provider": "openai",
            "model": model,
            "base_url": url,
            "backoff_base_s": 0.01,
            "backoff_max_s": 0.05,
            "max_retries": 2,
            "timeout_s": 20,
        }
        d.update(extra)
        for k, v in mode.endpoint.items():
            d[k] = {**d.get(k, {}), **v} if isinstance(v, dict) else v
        return d

    cfg = {
        "seed": 0,
        "documents": {"paths": [str(docs)], "max_tokens": 3000},
        "loop": {"max_rounds": 3, "k_weak": 2, "k_strong": 2, "acceptance": {"preset": "deployed"}},
        "models": ladder_models(ep),
        "roles": ladder_roles(),
    }
    for key, value in overrides.items():
        cfg[key] = value
    return cfg


def run_mode(name: str, tmp: Path, monkeypatch: Any = None, *, quiet: bool = True, **overrides: Any) -> dict[str, Any]:
    """Run `autodata run` on 2 documents against mode ``name``; the outcome as numbers and messages
    (``quiet``: ``--quiet``, no progress bar and no pre-flight notes)."""
    mode = zoo.MODES[name]
    docs = tmp / "docs"
    if not docs.exists():
        docs.mkdir()
        for d in DOCS:
            shutil.copy(d, docs / d.name)
    with ServerThread(mode) as srv:
        cfg = config_for(mode, srv.port, docs, **overrides)
        path = tmp / "config.yaml"
        path.write_text(yaml.safe_dump(cfg))
        out = tmp / "out"
        result = CliRunner().invoke(app, ["run", str(path), "--out", str(out), *(["--quiet"] if quiet else [])])
        chat = srv.chat_records()
    exit_code, output = result.exit_code, result.output
    if isinstance(result.exception, UserError):  # what `autodata` (cli.main) prints, with exit 2
        exit_code, output = 2, output + "error: " + result.exception.render()
    elif result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    summary_path = out / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    docs_ = summary.get("documents", {})
    episodes = out / "episodes.jsonl"
    refits = [json.loads(x).get("refits") for x in episodes.read_text().splitlines()] if episodes.exists() else []
    return {
        "mode": name,
        "exit": exit_code,
        "output": output,
        "accepted": docs_.get("accepted"),
        "exhausted": docs_.get("exhausted"),
        "failed": docs_.get("failed_this_session"),
        "calls": summary.get("calls"),
        "server_chat_requests": len(chat),
        "servers": summary.get("servers"),
        "simulated": summary.get("simulated_models"),
        "stopped": summary.get("stopped"),
        "failures": [f.get("error", "")[:160] for f in summary.get("failures", [])],
        "summary": summary,
        "refitted": sum(bool(r) for r in refits),  # documents re-fitted after a context-length error
    }
