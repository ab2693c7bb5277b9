"""A run computes its roles once: ``EpisodeSettings.from_config`` (roles, settings, sandbox check) and
``run_roles`` (which asks the config for the roles a profile, preset and orchestrator need) run once per
command, and everything else (pre-flight, key check, recipe and frozen hashes, executor, records,
summary) reads ``settings.endpoints.roles()``. Counted with patches on the two functions; the outputs are
those of an uncounted run."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from autodata.cli import app
from autodata.config import Config
from autodata.loop.episode import EpisodeSettings

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = str(ROOT / "examples" / "quickstart.yaml")


def _examples(run_dir: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run_dir / "examples.jsonl").read_text().splitlines()]
    for row in rows:
        row.pop("created_at", None)
    return rows


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    calls: Counter[str] = Counter()
    from_config = EpisodeSettings.from_config.__func__  # type: ignore[attr-defined]
    require_roles = Config.require_roles

    def counting_from_config(cls, cfg, **kwargs):
        calls["from_config"] += 1
        return from_config(cls, cfg, **kwargs)

    def counting_require_roles(self, roles, command):
        calls[f"require_roles: {command}"] += 1  # run_roles is its only caller for `autodata run`
        return require_roles(self, roles, command)

    monkeypatch.setattr(EpisodeSettings, "from_config", classmethod(counting_from_config))
    monkeypatch.setattr(Config, "require_roles", counting_require_roles)
    return calls


@pytest.mark.parametrize(
    ("command", "extra"),
    [(["run"], []), (["baseline", "--method", "self-instruct"], [])],
    ids=["run", "baseline"],
)
def test_a_command_computes_the_runs_roles_once(tmp_path: Path, counted: Counter[str], command, extra) -> None:
    out = tmp_path / "out"
    res = CliRunner().invoke(app, [*command, QUICKSTART, "--out", str(out), "--limit", "2", "--quiet", *extra])
    assert res.exit_code == 0, res.output
    assert counted == {"from_config": 1, "require_roles: autodata run": 1}, counted


def test_counting_changes_no_output(tmp_path: Path, counted: Counter[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """The same run with and without the counting patches writes the same examples and summary counts."""
    cli = CliRunner()
    res = cli.invoke(app, ["run", QUICKSTART, "--out", str(tmp_path / "counted"), "--limit", "3", "--quiet"])
    assert res.exit_code == 0, res.output
    monkeypatch.undo()
    monkeypatch.setenv("AUTODATA_CACHE_DIR", str(tmp_path / "cache2"))  # fresh answers, not the first run's cache
    res = cli.invoke(app, ["run", QUICKSTART, "--out", str(tmp_path / "plain"), "--limit", "3", "--quiet"])
    assert res.exit_code == 0, res.output
    assert _examples(tmp_path / "counted") == _examples(tmp_path / "plain")
    a, b = (json.loads((tmp_path / d / "summary.json").read_text()) for d in ("counted", "plain"))
    assert (a["documents"], a["calls"], a["rejections"]) == (b["documents"], b["calls"], b["rejections"])
