"""Labels that are true: a run answered by `autodata serve-sim` through `provider: openai` is marked
SIMULATED everywhere a `provider: simulated` run is (summary, run store, dataset card, report), because
every serve-sim reply says `system_fingerprint: autodata-simulated`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_serve_sim_behind_provider_openai_is_labelled_simulated(tmp_path, serve_sim):
    cfg = tmp_path / "http.yaml"
    lines = ["seed: 0", "documents: {paths: [examples/corpus/papers]}", "models:"]
    for name in ("weak", "strong", "judge", "challenger"):
        lines.append(f"  {name}: {{provider: openai, model: sim-{name}, base_url: '{serve_sim}'}}")
    lines.append(
        "roles: {challenger: challenger, quality_verifier: judge, weak_solver: weak, "
        "strong_solver: strong, judge: judge}"
    )
    cfg.write_text("\n".join(lines) + "\n")
    out = tmp_path / "run"
    env = {**os.environ, "AUTODATA_CACHE_DIR": str(tmp_path / "cache")}
    res = subprocess.run(
        [sys.executable, "-m", "autodata", "run", str(cfg), "--out", str(out), "--limit", "2", "-q"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env=env,
    )
    assert res.returncode == 0, res.stderr
    assert "SIMULATED" in res.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["simulated"] is True
    assert summary["simulated_models"] == ["challenger", "judge", "strong", "weak"]

    from autodata.export.rows import select
    from autodata.export.write import dataset_card
    from autodata.report.build import run_report
    from autodata.run_info import RunInfo
    from autodata.store.run_store import RunStore

    store = RunStore.open_existing(out)
    try:
        assert RunInfo.load(store).simulated
        card = dataset_card(store, select(store), "jsonl", ["question"])
        assert "SIMULATED DATA" in card
    finally:
        store.close()
    assert any("SIMULATED" in note for note in run_report(out).notes)
