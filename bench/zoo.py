"""What a 2-document `autodata run` gives against each emulated server (tests/server_zoo.py).

    python bench/zoo.py [--modes vllm-reasoning,sglang,...] [--markdown]

Each mode of the zoo (one real server's documented behaviour, source cited in tests/server_zoo.py)
is started on 127.0.0.1, and `autodata run` (pre-flight on, ``loop.max_rounds: 3``, k = 2 per side,
preset ``deployed``) runs the first two documents of ``examples/corpus/papers`` through it over HTTP,
each mode in a fresh directory with a fresh call cache. The answers themselves come from the
simulated ladder (a stand-in model): the figures say what autodata does with each server's quirks
(attempt errors counted and re-sampled, step-downs, stops with the config key), not how good a model
is. One row per mode: exit code, documents accepted / exhausted (round budget spent) / failed this
session, attempt errors by code (replies without an answer), the run's calls (pre-flight's are not
the run's) and the chat requests the server saw (pre-flight's included), structured-output step-downs
and single-request schema fallbacks, and the first thing the user is told.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "src"))

import server_zoo as zoo  # noqa: E402
from zoo_run import PROXY_VARS, run_mode  # noqa: E402

SERVERS = {
    "vllm-reasoning": "vLLM --reasoning-parser (budget spent thinking: content null)",
    "sglang": "SGLang (its context-length wording)",
    "ollama": "Ollama (json_schema accepted, not enforced)",
    "llama-server": "llama.cpp llama-server (no grammar, one model)",
    "openai-reasoning": "OpenAI o-series / gpt-5 (temperature: null set)",
    "anthropic": "Anthropic OpenAI-compatible layer",
    "gemini": "Gemini OpenAI-compatible (list errors, no message)",
    "openrouter": "OpenRouter (errors inside 200s)",
    "azure": "Azure OpenAI classic URL (api-key header, content filter)",
    "serve-sim": "autodata serve-sim via provider: openai",
    "vllm-small-window": "vLLM --max-model-len 2048 (budget 3,000 tokens)",
    "sglang-small-window": "SGLang --context-length 2500 (budget 3,000 tokens)",
    "openai-reasoning-unfixed": "OpenAI o-series / gpt-5, temperature not set to null",
    "quota": "OpenAI out of credit (429 insufficient_quota)",
}


def told(r: dict[str, Any]) -> str:
    """What the user reads about the outcome: the error (exit 2), the stop, the first failure, pre-flight's
    notes (one of each kind, with how many), the summary's lines about the server, the SIMULATED label."""
    out = r["output"]
    lines = [x.strip() for x in out.splitlines() if x.strip()]
    if r["exit"] == 2:
        at = next((i for i, x in enumerate(lines) if x.startswith("error:")), len(lines) - 1)
        return " ".join(x.strip(" -") for x in lines[at : at + 2])  # the error and its first detail
    said: list[str] = []
    if r["stopped"]:
        said.append(f"stopped: {r['stopped']}")
    notes = [x.removeprefix("pre-flight:").strip() for x in lines if x.startswith("pre-flight:") and " ok (" not in x]
    kinds: dict[str, list[str]] = {}
    for n in notes:
        kinds.setdefault(n.split(":", 1)[-1].split("(")[0].strip()[:40], []).append(n)
    for group in kinds.values():
        note = group[0] if len(group[0]) <= 170 else group[0][:170].rsplit(" ", 1)[0] + " …"
        said.append(f"pre-flight ({len(group)}x): {note}")
    s = r["servers"] or {}
    if s.get("replies_without_answer"):
        said.append("summary: replies without an answer (attempt errors) " + ", ".join(
            f"{k} {v}" for k, v in s["replies_without_answer"].items()))  # fmt: skip
    if s.get("step_downs") or s.get("schema_fallbacks"):
        said.append(f"summary: structured output stepped down {s.get('step_downs', 0)}, "
                    f"requests in JSON mode {s.get('schema_fallbacks', 0)}")  # fmt: skip
    if r["failures"]:
        said.append(f"failed: {r['failures'][0]}")
    if r.get("refitted"):
        said.append(f"{r['refitted']} documents re-fitted after a context-length 400 (episodes.jsonl refits)")
    if "SIMULATED" in out:
        said.append("labelled SIMULATED (banner and summary)")
    return "; ".join(said) or "nothing beyond the run summary"


def row(r: dict[str, Any]) -> dict[str, Any]:
    s = r["servers"] or {}
    errs = s.get("replies_without_answer") or {}
    return {
        "mode": r["mode"],
        "server": SERVERS.get(r["mode"], r["mode"]),
        "exit": r["exit"],
        "accepted": r["accepted"] if r["accepted"] is not None else "-",
        "exhausted": r["exhausted"] if r["exhausted"] is not None else "-",
        "failed": r["failed"] if r["failed"] is not None else "-",
        "attempt_errors": ", ".join(f"{k} {v}" for k, v in sorted(errs.items())) or "0",
        "calls": r["calls"] if r["calls"] is not None else "-",
        "server_saw": r["server_chat_requests"],
        "step_downs": f"{s.get('step_downs', 0)} / {s.get('schema_fallbacks', 0)}" if s else "-",
        "refitted": r.get("refitted", 0),
        "told": told(r).replace("|", "/"),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--modes", default=",".join(zoo.MODES), help="comma-separated zoo modes")
    args = ap.parse_args()
    for var in PROXY_VARS:
        os.environ.pop(var, None)
    os.environ["NO_PROXY"] = "127.0.0.1,localhost"
    os.environ["AZURE_OPENAI_API_KEY"] = zoo.AZURE_KEY
    rows = []
    here = os.getcwd()
    for name in args.modes.split(","):
        with tempfile.TemporaryDirectory() as d:
            os.chdir(d)  # the call cache and run directory of this mode alone
            try:
                rows.append(row(run_mode(name, Path(d), quiet=False)))
            finally:
                os.chdir(here)
        print(f"{name}: done", file=sys.stderr, flush=True)
    head = ["server (zoo mode)", "exit", "accepted", "exhausted", "failed", "attempt errors", "calls",
            "server saw", "step-downs / schema fallbacks", "re-fitted", "what the user is told"]  # fmt: skip
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for x in rows:
        cells = [f"{x['server']} (`{x['mode']}`)", x["exit"], x["accepted"], x["exhausted"], x["failed"],
                 x["attempt_errors"], x["calls"], x["server_saw"], x["step_downs"], x["refitted"],
                 x["told"]]  # fmt: skip
        print("| " + " | ".join(str(c) for c in cells) + " |")


if __name__ == "__main__":
    main()
