"""The frozen half: what the outer loop may never touch, found rather than listed, and its fingerprint.

What measures a recipe is frozen: every file of the judging package ``autodata/judging`` (solver, judge
and loop-judge prompts and code, output schemas, framing, the scorers, the scoring formula and
acceptance predicate), found by walking the directory; the loop's modules that pick a scorer or hand
scores to the predicate (found by their imports of the package's deciding modules); the code outside
the package that this code imports, followed transitively (the model runtime ``autodata/llm`` and the
code sandbox, each whole: how a reply is read -- which replies hold no answer, where reasoning ends --
is the runtime's; with ``config.py``, ``errors.py``, ``prompts.py`` and the templates rendered); and the
frozen settings (preset and thresholds, profile and its scorer, sample counts and temperatures, every
answering role's model and sampling). :func:`frozen_hash` fingerprints all of it (``autodata frozen
CONFIG --files`` lists it). Every run records it with its examples; the optimizer (``autodata.meta``)
checks it before every evaluation.

This module sits below ``autodata.meta`` and beside the loop, so that a run can record the hash of
what judged its examples without the loop importing the outer loop.
"""

from __future__ import annotations

import ast
import hashlib
import json
from dataclasses import asdict
from functools import lru_cache
from pathlib import Path
from typing import Any

import autodata
import autodata.judging
from autodata.config import FROZEN_ANSWER_FIELDS, Config
from autodata.loop.profile import profile

PACKAGE_DIR = Path(autodata.__file__).resolve().parent
JUDGING_DIR = Path(autodata.judging.__file__).resolve().parent
PROMPTS_DIR = PACKAGE_DIR / "prompts"


def _source_files(directory: Path) -> list[Path]:
    """Every file below ``directory`` but byte-code caches, in a stable order."""
    return sorted(
        p
        for p in directory.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix not in (".pyc", ".pyo")
    )


def judging_files() -> list[Path]:
    """Every file of the judging package (``autodata/judging``), found by walking it, in a stable order.

    Byte-code caches are not source and are left out; everything else (modules, templates, any file a
    later scorer adds) is covered without anyone listing it.
    """
    return _source_files(JUDGING_DIR)


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE_DIR).with_suffix("")
    parts = list(rel.parts[:-1]) if rel.name == "__init__" else list(rel.parts)
    return ".".join(["autodata", *parts])


@lru_cache(maxsize=1024)
def _scan(package: tuple[str, ...], source: str) -> tuple[frozenset[str], frozenset[str]]:
    """One parse of a module's ``source`` (its package's dotted parts given for relative imports): the
    modules it imports and the string constants ending in ``.j2`` it holds. Cached on the text itself,
    so an edited file is parsed again and an unchanged one is not (the optimizer hashes often)."""
    found: set[str] = set()
    templates: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package[: len(package) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.endswith(".j2"):
            templates.add(node.value)
    return frozenset(m for m in found if m == "autodata" or m.startswith("autodata.")), frozenset(templates)


def _parsed(path: Path) -> tuple[frozenset[str], frozenset[str]]:
    package = tuple(_module_name(path).split("."))
    return _scan(package if path.name == "__init__.py" else package[:-1], path.read_text(encoding="utf-8"))


def imported_modules(files: list[Path]) -> set[str]:
    """The ``autodata`` modules the given Python files import (parsed with ``ast``, never executed).

    Imports inside functions count (a late import is still a dependency); a relative import is resolved
    against the file's own package; ``from autodata.x import y`` gives ``autodata.x`` and ``autodata.x.y``
    (``y`` may be a module or a name defined in ``autodata.x``).
    """
    return {m for path in files if path.suffix == ".py" for m in _parsed(path)[0]}


def _module_file(module: str) -> Path | None:
    if module == "autodata":
        return PACKAGE_DIR / "__init__.py"
    rel = Path(*module.split(".")[1:])
    for candidate in (PACKAGE_DIR / rel.with_suffix(".py"), PACKAGE_DIR / rel / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None  # a name imported from a module (``from autodata.llm.types import CallError``)


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def interface_files() -> list[Path]:
    """The code outside the judging package that decides what it is given, found from imports (parsed).

    The rule: start from every ``autodata`` module the judging package imports, and from the runtime
    (``autodata.llm``) modules the harness (:func:`harness_files`) imports; a module in a sub-package
    (``autodata.llm``, ``autodata.sandbox``) covers that whole sub-package, found by walking it; a
    top-level module (``autodata.errors``, ``autodata.config``, ``autodata.prompts``) covers its file;
    and everything a covered file imports is followed the same way, until nothing new is found.

    Why whole and transitive: every step from a server's bytes to the ``Completion`` a scorer reads
    decides what is scored or whether an attempt counts. ``llm/replies.py`` says which replies hold no
    answer (content filter, reasoning only, unclosed ``<think>``, empty: attempt errors, never scored)
    and splits reasoning off (the judge sees only the text after ``</think>``); ``llm/endpoint.py``
    builds the ``Completion`` from it; ``llm/backends.py`` and ``llm/retry.py`` decide whether a failure
    is retried or becomes an attempt error; ``llm/cache.py`` and the cache key decide which stored answer
    is replayed (a key shared by two servers once handed one side's answers to the other); ``config.py``
    resolves the settings recorded below (``FROZEN_ANSWER_FIELDS``). None of that was covered when only
    the modules the package imports directly were (an edit calling every reply "no answer" left the hash
    unchanged). The code sandbox runs and counts unit tests: covered whole the same way. Jinja templates
    a covered module renders (``*.j2`` names in its source, found under ``autodata/prompts``) are covered
    too, with ``prompts.py``, which renders them.
    """
    todo = {m for m in imported_modules(judging_files()) if not _within(m, "autodata.judging")}
    todo |= {m for m in imported_modules(harness_files()) if _within(m, "autodata.llm")}
    seen: set[str] = set()
    files: set[Path] = set()
    while todo:
        m = todo.pop()
        seen.add(m)
        f = _module_file(m)
        if f is None or f.is_relative_to(JUDGING_DIR):
            continue
        parts = m.split(".")
        package = PACKAGE_DIR / parts[1] if len(parts) > 1 else None
        if package is not None and (package / "__init__.py").is_file():
            new = set(_source_files(package)) - files
        else:
            new = {f} - files
        files |= new
        todo |= {n for n in imported_modules(sorted(new)) if not _within(n, "autodata.judging")} - seen
    templates = {
        PROMPTS_DIR / name
        for f in files
        if f.suffix == ".py"
        for name in _parsed(f)[1]
        if (PROMPTS_DIR / name).is_file()
    }
    if templates:  # and the module that renders them (undefined values are errors, whitespace stripped)
        templates.add(PACKAGE_DIR / "prompts.py")
    return sorted(files | templates)


DECIDING = ("autodata.judging.acceptance", "autodata.judging.scoring")


def harness_files() -> list[Path]:
    """The loop's code that picks a scorer or applies the acceptance predicate, found by parsing.

    The judging package decides a score and what passes; the loop (``autodata.loop``) still picks the
    scorer a profile names (``loop/profile.py``: ``Profile.scoring``), which attempts reach the predicate
    (a reply without an answer is an attempt error, not a 0) and hands the scores over. A change there
    moves every decision as surely as one in the package (a round handing ``decide`` weak scores of 0
    left the hash unchanged), so every module of the loop that imports from the package's deciding
    modules (``DECIDING``: the predicate's ``acceptance``, the scorers' ``scoring``) is covered; the
    runtime modules these import are followed by :func:`interface_files`.
    """
    loop = _source_files(PACKAGE_DIR / "loop")
    return [
        p for p in loop if p.suffix == ".py" and any(_within(m, d) for m in imported_modules([p]) for d in DECIDING)
    ]


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def frozen_files() -> dict[str, str]:
    """Path (relative to the ``autodata`` package) -> SHA-256 of its bytes, for every frozen file."""
    files = {*judging_files(), *interface_files(), *harness_files()}
    return {p.relative_to(PACKAGE_DIR).as_posix(): _digest(p) for p in sorted(files)}


def frozen_settings(cfg: Config, roles: dict[str, str] | None = None) -> dict[str, Any]:
    """The settings that measure a recipe: preset and thresholds, profile and its scorer, sample
    counts and temperatures, orchestrator, final quality check, rubric rules (``loop.rubric``), and
    every answering role's model. ``roles``: the run's roles when already computed
    (``EpisodeSettings.endpoints.roles()``), else :func:`~autodata.loop.episode.run_roles`."""
    from autodata.loop.episode import run_preset, run_roles  # late: the loop's run imports this module

    loop = cfg.loop
    prof = profile(loop.profile)
    return {
        "preset": asdict(run_preset(cfg)),
        "profile": loop.profile,
        "scorer": prof.scorer,
        "solver_template": prof.solver_template,
        "orchestrator": loop.orchestrator,
        "samples": {
            "k_weak": loop.k_weak or prof.k_weak,
            "k_strong": loop.k_strong or prof.k_strong,
            "weak_temperature": loop.weak_temperature,
            "strong_temperature": loop.strong_temperature,
            "weak_first": loop.weak_first,
            "min_valid_attempts": loop.min_valid_attempts,
            "max_resamples": loop.max_resamples,
        },
        "final_quality_check": loop.final_quality_check,
        "rubric": loop.rubric.model_dump(mode="json"),
        "judge_sees_context": loop.judge_sees_context,
        "models": {
            role: cfg.models[name].model_dump(mode="json", include=FROZEN_ANSWER_FIELDS)
            for role, name in sorted((roles if roles is not None else run_roles(cfg)).items())
        },
    }


def frozen_parts(cfg: Config, roles: dict[str, str] | None = None) -> dict[str, Any]:
    """What measures a recipe: every frozen file's digest and the frozen settings. Any change here
    means scores are no longer comparable."""
    return {"files": frozen_files(), "settings": frozen_settings(cfg, roles)}


def frozen_hash(cfg: Config, roles: dict[str, str] | None = None) -> str:
    blob = json.dumps(frozen_parts(cfg, roles), sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
