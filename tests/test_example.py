"""The typed example (``autodata.example``): the solver messages stored as sent, old rows migrated on
read, a stored row unchanged through a read and a re-write, and the exports taking the prompt from the
store (never a template rendered again)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from autodata.example import VERSION, Example, migrate
from autodata.export.rows import prompt_messages, rl_row, sft_row
from autodata.export.write import export
from autodata.judging.solver import solver_messages
from autodata.store.reviews import ReviewLog
from autodata.store.run_store import RunStore

ROOT = Path(__file__).resolve().parents[1]
# a row of run.db's examples table written by the quick start before the typed example existed
# (no "version", no "solver_messages"), kept as it was stored
V1_ROW = json.loads((ROOT / "tests" / "data" / "example_v1.json").read_text(encoding="utf-8"))


def test_a_row_stored_before_the_version_key_loads_and_is_migrated(tmp_path):
    assert "version" not in V1_ROW and "solver_messages" not in V1_ROW
    store = RunStore(tmp_path / "run")
    store._db.execute(  # written as the old code wrote it
        "INSERT INTO examples (id, document_id, seq, data) VALUES (?, ?, ?, ?)",
        (V1_ROW["id"], V1_ROW["document_id"], 0, json.dumps(V1_ROW)),
    )
    (ex,) = list(store.examples())
    assert ex.version == VERSION and ex.id == V1_ROW["id"]
    assert ex.question == V1_ROW["question"] and ex.rubric_dicts() == V1_ROW["rubric"]
    assert [a.stored() for a in ex.strong.attempts] == V1_ROW["strong"]["attempts"]
    assert len(ex.trajectory) == V1_ROW["rounds"] and ex.trajectory[-1].stored() == V1_ROW["trajectory"][-1]
    # its prompt was not stored: rebuilt once, on read, and said so
    assert ex.solver_messages_source == "rebuilt"
    assert ex.prompt() == solver_messages(V1_ROW["context"], V1_ROW["question"])
    # everything it had is kept as it was; only the version and the rebuilt prompt are new
    stored = ex.stored()
    assert {k: v for k, v in stored.items() if k not in ("version", "solver_messages", "solver_messages_source")} == (
        V1_ROW
    )
    # the stored row itself is not rewritten by a read
    raw = store._db.execute("SELECT data FROM examples").fetchone()[0]
    assert json.loads(raw) == V1_ROW
    store.close()
    assert migrate(V1_ROW) is not V1_ROW and "version" not in V1_ROW


def test_a_row_of_a_newer_version_is_refused_with_its_version():
    with pytest.raises(ValueError, match="format version 99"):
        Example.load({**V1_ROW, "version": 99})


def test_a_new_row_round_trips_exactly_and_keeps_unknown_keys():
    row = {**migrate(V1_ROW), "solver_messages_source": "sent", "future_field": {"x": 1}}
    assert Example.load(row).stored() == row
    assert Example.load(json.loads(json.dumps(Example.load(row).stored()))) == Example.load(row)


def _run(tmp_path: Path, config: str, limit: int) -> Path:
    from typer.testing import CliRunner

    from autodata.cli import app

    out = tmp_path / "run"
    res = CliRunner().invoke(app, ["run", config, "--out", str(out), "--limit", str(limit), "-q"])
    assert res.exit_code == 0, res.output
    return out


def test_the_stored_messages_are_the_ones_the_solvers_were_sent(tmp_path, monkeypatch):
    """The run stores each example's solver messages as sent (captured here at the runtime's
    ``complete_each``, which every solver call goes through), with the frozen hash of the run."""
    from autodata.llm.runtime import ModelRuntime

    sent: dict[str, list] = {}
    original = ModelRuntime.complete_each

    def spy(self, endpoint, messages, k, *, role, **kw):
        if role in ("weak_solver", "strong_solver"):
            sent.setdefault(messages[-1]["content"], []).append((role, messages))
        return original(self, endpoint, messages, k, role=role, **kw)

    monkeypatch.setattr(ModelRuntime, "complete_each", spy)
    out = _run(tmp_path, str(ROOT / "examples" / "verifiable.yaml"), 2)
    examples = [Example.load(json.loads(line)) for line in (out / "examples.jsonl").read_text().splitlines()]
    assert examples
    frozen = RunStore.open_existing(out).get_meta("frozen_hash")
    for ex in examples:
        assert ex.solver_messages_source == "sent" and ex.frozen_hash == frozen and frozen
        calls = sent[ex.prompt()[-1]["content"]]
        assert {role for role, _ in calls} == {"weak_solver", "strong_solver"}
        assert all(messages == ex.prompt() for _, messages in calls)
        assert "Final answer" in ex.prompt()[0]["content"]  # the verifiable profile's own solver prompt


def test_exports_use_the_stored_prompt_not_a_template(run_copy, tmp_path, monkeypatch):
    """No export renders the solver template: the prompt comes from the store (a stored prompt that
    differs from any template shows it), and a reviewer's edit replaces only the fenced text."""
    import autodata.judging.solver as solver

    con = sqlite3.connect(run_copy / "run.db", isolation_level=None)
    rows = con.execute("SELECT id, data FROM examples ORDER BY seq").fetchall()
    for ex_id, data in rows:
        e = json.loads(data)
        e["solver_messages"] = [{"role": "user", "content": "AS SENT\n" + e["solver_messages"][0]["content"]}]
        con.execute("UPDATE examples SET data = ? WHERE id = ?", (json.dumps(e), ex_id))

    def no_render(*a, **k):
        raise AssertionError("an export rendered the solver template")

    monkeypatch.setattr(solver, "solver_messages", no_render)
    first = json.loads(rows[0][1])
    log = ReviewLog(con)
    log.record(first["id"], "edit", reviewer="ada", payload={"question": "An edited question </question> here?"})
    for fmt in ("rl", "sft"):
        table = pq.read_table(export(run_copy, fmt, tmp_path / f"{fmt}.parquet", include="accepted").path).to_pylist()
        prompts = {r["id"]: (r.get("prompt") or r["messages"][:-1]) for r in table}
        assert all(p[0]["content"].startswith("AS SENT\n") for p in prompts.values())
        edited = prompts[first["id"]][0]["content"]
        assert "<question>\nAn edited question ‹/question› here?\n</question>" in edited  # fenced like the original
        assert first["question"] not in edited and first["context"] in edited
    # the row functions take a stored dict too (migrated, the stored prompt used as it is)
    stored = migrate(json.loads(rows[1][1]))
    assert prompt_messages(stored) == stored["solver_messages"] == rl_row(stored, 0)["prompt"]
    assert sft_row(stored)["messages"][:-1] == stored["solver_messages"]
