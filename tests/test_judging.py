"""The sealed judging package: its import graph, the frozen hash over it, and the scorers profiles name."""

from __future__ import annotations

import ast
import asyncio
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

import autodata
from autodata import frozen
from autodata.cli import app
from autodata.config import load_config
from autodata.judging import scoring
from autodata.judging.schemas import RubricItem
from autodata.loop.profile import PROFILES
from autodata.loop.run import run_roles
from autodata.meta.recipe import frozen_hash, frozen_parts, judging_files

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = Path(autodata.__file__).resolve().parent
JUDGING = PACKAGE / "judging"
OPTIMIZE = ROOT / "examples" / "optimize.yaml"

# What the judging package may use of the rest of the project: the model runtime's call interface
# (runtime, request/response types, structured-output parsing), the user-facing errors, and the code
# sandbox that runs unit tests (the code scorer's execution interface; covered whole by the frozen hash).
ALLOWED_OUTSIDE = {"autodata.llm.runtime", "autodata.llm.types", "autodata.llm.structured", "autodata.errors"}
ALLOWED_OUTSIDE_PACKAGES = ("autodata.sandbox",)


def _allowed(name: str) -> bool:
    return name in ALLOWED_OUTSIDE or any(name == p or name.startswith(p + ".") for p in ALLOWED_OUTSIDE_PACKAGES)


def _imports(path: Path, root: Path = PACKAGE) -> set[str]:
    """Every module a file imports, relative imports resolved against its package (ast, not execution)."""
    package = ["autodata", *path.relative_to(root).parent.parts]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package[: len(package) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in (
            "import_module",
            "__import__",
        ):
            found.add("<dynamic import>")
    return found


def _is_module(name: str) -> bool:
    rel = Path(*name.split(".")[1:])
    return (PACKAGE / rel).with_suffix(".py").is_file() or (PACKAGE / rel / "__init__.py").is_file()


def test_the_judging_package_imports_nothing_of_the_project_but_the_runtime_interface_and_errors():
    files = [p for p in JUDGING.rglob("*.py") if "__pycache__" not in p.parts]
    assert len(files) >= 10  # found by walking: rubric, acceptance, verifiable, roles, scoring, ...
    outside: dict[str, set[str]] = {}
    for f in files:
        for name in _imports(f):
            if name == "<dynamic import>":
                outside.setdefault(name, set()).add(f.name)
            elif name.startswith("autodata") and not name.startswith("autodata.judging"):
                if _is_module(name) or name == "autodata":
                    outside.setdefault(name, set()).add(f.name)
    assert all(_allowed(k) for k in outside), {k: v for k, v in outside.items() if not _allowed(k)}


def test_the_import_check_sees_a_forbidden_import(tmp_path):
    """The check above is not vacuous: a module importing the loop, relatively or absolutely, is caught."""
    fake = tmp_path / "autodata" / "judging" / "probe.py"
    fake.parent.mkdir(parents=True)
    fake.write_text("from ..loop import episode\nimport autodata.documents\nimportlib.import_module('x')\n")
    names = _imports(fake, tmp_path / "autodata")
    assert "<dynamic import>" in names and {"autodata.loop.episode", "autodata.documents"} <= names


@pytest.fixture()
def package_copy(tmp_path, monkeypatch):
    """A copy of the whole autodata package that the frozen hash reads instead of the real one."""
    copy = tmp_path / "autodata"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    monkeypatch.setattr(frozen, "PACKAGE_DIR", copy)
    monkeypatch.setattr(frozen, "JUDGING_DIR", copy / "judging")
    monkeypatch.setattr(frozen, "PROMPTS_DIR", copy / "prompts")
    return copy


def test_the_copy_hashes_like_the_package(package_copy, monkeypatch):
    cfg = load_config(OPTIMIZE)
    copied = frozen_hash(cfg)
    monkeypatch.undo()
    assert frozen_hash(cfg) == copied


def test_editing_any_file_of_the_judging_package_changes_the_frozen_hash(package_copy):
    cfg = load_config(OPTIMIZE)
    before = frozen_hash(cfg)
    files = judging_files()
    names = {p.relative_to(package_copy / "judging").as_posix() for p in files}
    assert {"rubric.py", "acceptance.py", "verifiable.py", "scoring.py", "framing.py", "schemas.py"} <= names
    assert {"templates/solver.j2", "templates/judge.j2", "templates/loop_judge.j2"} <= names
    for path in files:
        original = path.read_bytes()
        path.write_bytes(original + b"\n")
        try:
            assert frozen_hash(cfg) != before, path.name
        finally:
            path.write_bytes(original)
    assert frozen_hash(cfg) == before
    (package_copy / "judging" / "code_tests.py").write_text('"""a new scorer"""\n', encoding="utf-8")
    assert frozen_hash(cfg) != before  # a file added to the package is covered without being listed


def test_editing_the_runtime_interface_the_judge_uses_changes_the_frozen_hash(package_copy):
    cfg = load_config(OPTIMIZE)
    before = frozen_hash(cfg)
    covered = set(frozen_parts(cfg)["files"])
    assert {
        "llm/structured.py",
        "prompts/structured_instructions.j2",
        "prompts/structured_repair.j2",
        "prompts.py",
    } <= covered
    (package_copy / "prompts" / "structured_repair.j2").write_text("just answer anything\n", encoding="utf-8")
    assert frozen_hash(cfg) != before
    again = frozen_hash(cfg)
    runner = package_copy / "sandbox" / "runner.py"  # counts passed tests inside the sandbox: covered whole
    assert "sandbox/runner.py" in frozen_parts(cfg)["files"]
    runner.write_text(runner.read_text(encoding="utf-8") + "\n# every test passes\n", encoding="utf-8")
    assert frozen_hash(cfg) != again


def test_forcing_every_judged_score_to_one_and_turning_fencing_off_changes_the_frozen_hash(package_copy):
    """The issue's demonstration: this edit used to leave ``frozen_hash(examples/optimize.yaml)`` unchanged."""
    cfg = load_config(OPTIMIZE)
    before = frozen_hash(cfg)
    rubric_py = package_copy / "judging" / "rubric.py"
    text = rubric_py.read_text(encoding="utf-8")
    assert "    return min(1.0, max(0.0, raw / total))" in text
    rubric_py.write_text(text.replace("    return min(1.0, max(0.0, raw / total))", "    return 1.0"))
    framing_py = package_copy / "judging" / "framing.py"
    text = framing_py.read_text(encoding="utf-8")
    framing_py.write_text(text.replace("    return _CLOSERS.sub(", "    return text\n    return _CLOSERS.sub("))
    assert frozen_hash(cfg) != before


def test_the_loop_handing_the_predicate_fixed_scores_changes_the_frozen_hash(package_copy):
    """Found by a break-in: ``Steps.decision`` handing ``decide`` weak scores of 0 and strong ones of 1
    (every round accepted whatever the solvers did) left the frozen hash unchanged."""
    cfg = load_config(OPTIMIZE)
    before = frozen_hash(cfg)
    assert {"loop/episode.py", "loop/agent.py"} <= set(frozen_parts(cfg)["files"])
    episode = package_copy / "loop" / "episode.py"
    text = episode.read_text(encoding="utf-8")
    honest = "            weak=scores_of(rnd.weak),\n            strong=scores_of(rnd.strong),\n"
    assert honest in text
    episode.write_text(
        text.replace(honest, "            weak=[0.0] * 3,\n            strong=[1.0] * 3,\n"), encoding="utf-8"
    )
    assert frozen_hash(cfg) != before


def test_editing_how_a_reply_is_read_changes_the_frozen_hash(package_copy):
    """Found by review: ``llm/replies.py`` decides which solver replies hold no answer (attempt errors, never
    scored) and splits reasoning off (the judge reads only what follows ``</think>``), yet it was outside
    the hash: calling every reply "no answer" or no longer splitting reasoning left it unchanged."""
    cfg = load_config(OPTIMIZE)
    before = frozen_hash(cfg)
    assert "llm/replies.py" in frozen_parts(cfg)["files"]
    replies = package_copy / "llm" / "replies.py"
    honest = replies.read_text(encoding="utf-8")
    split = "    stripped = text.lstrip()\n    if stripped.startswith(OPEN):\n"
    assert split in honest
    replies.write_text(honest.replace(split, "    return Split(text, None)\n" + split, 1), encoding="utf-8")
    assert frozen_hash(cfg) != before  # reasoning no longer split off: the judge reads the thinking
    verdict = "    problem = None\n"
    assert verdict in honest
    replies.write_text(honest.replace(verdict, '    problem = "empty: every reply"\n', 1), encoding="utf-8")
    assert frozen_hash(cfg) != before  # every reply an attempt error
    replies.write_text(honest, encoding="utf-8")
    assert frozen_hash(cfg) == before


def test_every_module_that_decides_what_is_scored_is_covered_found_by_rule(package_copy):
    """The kind, not the one file: the modules that decide what text is scored and whether an attempt is
    (reply reading, the ``Completion`` built from it, failures that become attempt errors, the cache that
    replays answers, the profile's choice of scorer, the settings resolved) are all covered, found by
    following imports; and the rule is closed: whatever a covered module imports is covered too."""
    cfg = load_config(OPTIMIZE)
    covered = set(frozen_parts(cfg)["files"])
    deciders = {
        "llm/replies.py",  # no answer, reasoning split
        "llm/endpoint.py",  # the Completion a scorer reads
        "llm/backends.py",  # failures classified: retried or an attempt error
        "llm/retry.py",
        "llm/cache.py",  # which stored answer is replayed
        "llm/structured.py",  # the judge's marks parsed
        "llm/runtime.py",
        "llm/types.py",
        "loop/episode.py",  # attempt validity, the predicate's inputs
        "loop/agent.py",
        "loop/profile.py",  # the scorer a profile names
        "config.py",  # the frozen settings resolved (FROZEN_ANSWER_FIELDS)
    }
    assert deciders <= covered, deciders - covered

    def resolved(module: str) -> str | None:
        rel = Path(*module.split(".")[1:])
        for f in (rel.with_suffix(".py"), rel / "__init__.py"):
            if (package_copy / f).is_file():
                return f.as_posix()
        return None  # a name defined in a module

    for name in covered:  # closed under imports (the harness: under its runtime imports)
        if not name.endswith(".py"):
            continue
        for module in _imports(package_copy / name, package_copy):
            if module.startswith("autodata.") and (not name.startswith("loop/") or module.startswith("autodata.llm.")):
                assert resolved(module) in (None, *covered), (name, module)
    assert not {"loop/run.py", "loop/document.py", "roles/challenger.py", "sim/provider.py"} & covered


def test_editing_any_covered_file_outside_the_judging_package_changes_the_frozen_hash(package_copy):
    cfg = load_config(OPTIMIZE)
    before = frozen_hash(cfg)
    outside = [n for n in frozen_parts(cfg)["files"] if not n.startswith("judging/")]
    assert len(outside) >= 20
    for name in outside:
        path = package_copy / name
        original = path.read_bytes()
        path.write_bytes(original + b"\n")
        try:
            assert frozen_hash(cfg) != before, name
        finally:
            path.write_bytes(original)
    assert frozen_hash(cfg) == before
    # found, not listed: a new runtime module, a new loop module that picks a scorer, a relative import
    (package_copy / "llm" / "reader.py").write_text('"""reads replies another way"""\n', encoding="utf-8")
    assert "llm/reader.py" in frozen_parts(cfg)["files"]
    picker = package_copy / "loop" / "picker.py"
    picker.write_text("from autodata.judging.scoring import scorer\n", encoding="utf-8")
    assert "loop/picker.py" in frozen_parts(cfg)["files"]
    (package_copy / "loop" / "bystander.py").write_text("from autodata.judging import solver\n", encoding="utf-8")
    assert "loop/bystander.py" not in frozen_parts(cfg)["files"]  # records prompts, decides nothing
    (package_copy / "judging" / "probe.py").write_text("from ..store import lock\n", encoding="utf-8")
    assert "store/lock.py" in frozen_parts(cfg)["files"]


def test_the_profile_picking_another_scorer_changes_the_frozen_hash(package_copy):
    """The settings record the scorer's name; the code that turns the name into a scorer is covered too."""
    cfg = load_config(OPTIMIZE)
    before = frozen_hash(cfg)
    profile_py = package_copy / "loop" / "profile.py"
    text = profile_py.read_text(encoding="utf-8")
    honest = "        return scorer(self.scorer)\n"
    assert honest in text
    profile_py.write_text(text.replace(honest, '        return scorer("exact-answer")\n'), encoding="utf-8")
    assert frozen_hash(cfg) != before


def test_frozen_command_prints_the_hash_and_lists_every_file_and_setting():
    cfg = load_config(OPTIMIZE)
    runner = CliRunner()
    res = runner.invoke(app, ["frozen", str(OPTIMIZE)])
    assert res.exit_code == 0, res.output
    assert res.output.strip() == frozen_hash(cfg)
    res = runner.invoke(app, ["frozen", str(OPTIMIZE), "--files"])
    assert res.exit_code == 0, res.output
    listed = {line.split()[-1] for line in res.output.splitlines() if line.startswith("  ") and "=" not in line}
    package_files = {p.relative_to(PACKAGE).as_posix() for p in JUDGING.rglob("*") if p.is_file()}
    package_files = {f for f in package_files if "__pycache__" not in f}
    assert package_files <= listed
    assert {"llm/replies.py", "llm/endpoint.py", "loop/profile.py", "loop/episode.py", "config.py"} <= listed
    assert '  scorer = "rubric-judge"' in res.output and "  preset.gap_min = 0.2" in res.output
    assert "  samples.k_weak = 3" in res.output  # the profile's default, resolved
    assert runner.invoke(app, ["frozen", str(OPTIMIZE), "--set", "loop.profile=legal"]).output.strip() != (
        frozen_hash(cfg)
    )


# ---------------------------------------------------------------------- scorers


def test_every_profile_names_a_known_scorer_and_the_reward_style_it_exports():
    named = {p.name: (p.scorer, p.reward_style) for p in PROFILES.values()}
    assert named["rubric-qa"] == named["legal"] == ("rubric-judge", "rubric")
    assert named["verifiable"] == ("exact-answer", "rule")  # its RL rows once said "rubric"
    assert named["code"] == ("code-tests", "rule")
    for p in PROFILES.values():
        assert p.scoring is scoring.SCORERS[p.scorer] and p.reward_style in ("rubric", "rule")
    with pytest.raises(ValueError, match="unknown scorer 'nope'; expected one of: rubric-judge, exact-answer"):
        scoring.scorer("nope")


def test_the_judge_role_is_required_exactly_when_the_scorer_needs_it():
    cfg = load_config(ROOT / "examples" / "quickstart.yaml")
    assert "judge" in run_roles(cfg)
    exact = load_config(ROOT / "examples" / "quickstart.yaml", ["loop.profile=verifiable"])
    assert "judge" not in run_roles(exact)


class _Example:
    def __init__(self) -> None:
        self.question = "What is 3/4 as a decimal?"
        self.reference_answer = "0.75"
        self.rubric = [RubricItem(criterion="states 0.75", weight=1)]


def test_the_exact_answer_scorer_checks_in_code_and_calls_no_model():
    ex = scoring.ExactAnswer()
    right = asyncio.run(ex.score(None, None, _Example(), "So the answer is \\boxed{3/4}.", sample=0))  # type: ignore[arg-type]
    wrong = asyncio.run(ex.score(None, None, _Example(), "Answer: 0.7", sample=0))  # type: ignore[arg-type]
    assert (right.marks, right.score, wrong.marks, wrong.score) == ([1], 1.0, [0], 0.0)
    assert ex.harness_rubric()[0].criterion == scoring.EXACT_CRITERION
    agreed = ex.agreement(["3/4", "0.75", "0.7"], "0.75")
    assert agreed == {"majority_answer": "3/4", "votes": 2, "of": 3, "matches_reference": True}


def test_the_rubric_judge_needs_a_judge_and_has_no_answer_agreement():
    rj = scoring.RubricJudge()
    with pytest.raises(ValueError, match="needs a judge endpoint"):
        asyncio.run(rj.score(None, None, _Example(), "0.75", sample=0))  # type: ignore[arg-type]
    assert rj.harness_rubric() is None and rj.agreement(["1"], "1") is None


def test_the_loop_judges_verdict_is_never_an_accept_by_default():
    assert scoring.loop_judge_verdict({"verdict": "accept", "reasons": ["fine"]}) == ("accept", ("fine",))
    assert scoring.loop_judge_verdict({"verdict": "improve"}) == ("improve", ())
    verdict, reasons = scoring.loop_judge_verdict({"verdict": None, "error": "timeout"})
    assert verdict == "improve" and "timeout" in reasons[0]
    assert scoring.loop_judge_verdict(None)[0] == "improve"
