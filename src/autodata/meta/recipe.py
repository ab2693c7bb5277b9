"""Recipes: the editable half of the harness, and the frozen half it may never touch.

A recipe is a small set of named text components (the orchestrator's, challenger's and quality
verifier's instructions) plus declared numeric knobs (the round budget), with a content hash and a
parent. It is applied onto a config's ``loop`` section and nothing else.

Everything that measures a recipe is frozen: every file of the judging package ``autodata/judging``
(solver, judge and loop-judge prompts and code, output schemas, framing, the scorers, the scoring
formula and acceptance predicate), found by walking the directory rather than listed; the modules
outside it that it imports (the model runtime's call interface, found by parsing its imports) with
the templates they render; and the frozen settings: the preset and its thresholds, the profile and
its scorer, the sample counts and temperatures, and every answering role's model and sampling.
:func:`frozen_hash` fingerprints all of it (``autodata frozen CONFIG --files`` lists it); the
optimizer records it at the start and checks it before every evaluation, so a changed file, config or
model between iterations aborts the evaluation instead of silently moving the goalposts.
"""

from __future__ import annotations

import ast
import hashlib
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

import autodata
import autodata.judging
from autodata.config import DIRECTIVES, FROZEN_ANSWER_FIELDS, Config, unknown_directives
from autodata.errors import UserError
from autodata.loop.profile import profile

# component name -> the loop setting it writes
EDITABLE: dict[str, str] = {
    "orchestrator_instructions": "orchestrator_instructions",
    "challenger_instructions": "challenger_instructions",
    "verifier_instructions": "verifier_instructions",
    "directives": "directives",  # comma-separated names of declared directives (config.DIRECTIVES)
}
# components whose text is a list of declared names, not free instructions
LIST_COMPONENTS = frozenset({"directives"})
MAX_COMPONENT_CHARS = 4000
PACKAGE_DIR = Path(autodata.__file__).resolve().parent
JUDGING_DIR = Path(autodata.judging.__file__).resolve().parent
PROMPTS_DIR = PACKAGE_DIR / "prompts"


class Recipe(BaseModel):
    model_config = ConfigDict(extra="forbid")

    components: dict[str, str] = Field(default_factory=dict)
    knobs: dict[str, int] = Field(default_factory=dict)
    parent: str | None = None

    @property
    def hash(self) -> str:
        blob = json.dumps({"components": self.components, "knobs": self.knobs}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]

    def to_yaml(self) -> str:
        data = {"hash": self.hash, "parent": self.parent, "components": self.components, "knobs": self.knobs}
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)


def directive_names(text: str) -> list[str]:
    """The names in a ``directives`` component ("multi_step, counterfactual"), in order, once each."""
    return list(dict.fromkeys(n for n in text.replace(",", " ").split() if n))


def root_recipe(cfg: Config) -> Recipe:
    """The recipe a config already carries: where evolution starts.

    The ``directives`` component is present only when the config names some, so a recipe without
    directives keeps the hash it had before directives existed.
    """
    loop = cfg.loop
    components = {name: getattr(loop, field) for name, field in EDITABLE.items() if name not in LIST_COMPONENTS}
    if loop.directives:
        components["directives"] = ", ".join(loop.directives)
    return Recipe(components=components, knobs={name: getattr(loop, name) for name in cfg.optimize.knob_ranges})


def apply_recipe(cfg: Config, recipe: Recipe) -> Config:
    """A config whose loop runs this recipe; only editable settings change."""
    unknown = sorted(set(recipe.components) - set(EDITABLE)) + sorted(set(recipe.knobs) - set(cfg.optimize.knob_ranges))
    if unknown:
        raise UserError(
            f"the recipe sets {', '.join(unknown)}, which are not editable; "
            f"editable: {', '.join([*EDITABLE, *cfg.optimize.knob_ranges])}"
        )
    update: dict[str, Any] = {EDITABLE[k]: v for k, v in recipe.components.items() if k not in LIST_COMPONENTS}
    if "directives" in recipe.components:
        names = directive_names(recipe.components["directives"])
        unknown = unknown_directives(names)
        if unknown:
            raise UserError(
                f"the recipe names unknown directive(s) {', '.join(unknown)}; declared: {', '.join(DIRECTIVES)}"
            )
        update["directives"] = names
    for name, value in recipe.knobs.items():
        lo, hi = cfg.optimize.knob_ranges[name]  # type: ignore[index]
        if not lo <= value <= hi:
            raise UserError(f"the recipe sets {name}={value}, outside its declared range {lo}..{hi}")
        update[name] = value
    return cfg.model_copy(update={"loop": cfg.loop.model_copy(update=update)})


def load_recipe(path: str | Path) -> Recipe:
    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise UserError(f"cannot read recipe {p}: {exc}") from None
    if not isinstance(data, dict):
        raise UserError(f"{p}: a recipe is a mapping with components and knobs")
    stated = data.pop("hash", None)
    try:
        recipe = Recipe.model_validate(data)
    except ValueError as exc:
        raise UserError(f"{p}: not a recipe: {exc}") from None
    if stated is not None and stated != recipe.hash:
        raise UserError(f"{p}: its content does not match its hash {stated} (edited by hand?); remove the hash line")
    return recipe


def judging_files() -> list[Path]:
    """Every file of the judging package (``autodata/judging``), found by walking it, in a stable order.

    Byte-code caches are not source and are left out; everything else (modules, templates, any file a
    later scorer adds) is covered without anyone listing it.
    """
    return sorted(
        p
        for p in JUDGING_DIR.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix not in (".pyc", ".pyo")
    )


def imported_modules(files: list[Path]) -> set[str]:
    """The ``autodata`` modules the given Python files import (parsed with ``ast``, never executed)."""
    found: set[str] = set()
    for path in files:
        if path.suffix != ".py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module)
                found.update(f"{node.module}.{a.name}" for a in node.names)
    return {m for m in found if m == "autodata" or m.startswith("autodata.")}


def _module_file(module: str) -> Path | None:
    rel = Path(*module.split(".")[1:])
    for candidate in (PACKAGE_DIR / rel.with_suffix(".py"), PACKAGE_DIR / rel / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None  # a name imported from a module (``from autodata.llm.types import CallError``)


def interface_files() -> list[Path]:
    """The code outside the judging package that it calls, found from its imports (parsed, not listed).

    - The model runtime (``autodata.llm``) is the interface to the models, most of it transport
      (pacing, caching, retries): only the modules the package imports are covered, with the prompt
      templates those modules render (``*.j2`` names in their source) and ``prompts.py``, which renders
      them — how the judge's structured answer is asked for and repaired decides what a judge can return.
    - Any other package it imports from (the code sandbox, which runs and counts unit tests) decides
      scores as a whole: every file of that package is covered, found by walking it.
    - A single module it imports (``autodata.errors``) is covered as that file.
    """
    files: set[Path] = set()
    for m in imported_modules(judging_files()):
        if m == "autodata.judging" or m.startswith("autodata.judging."):
            continue
        f = _module_file(m)
        if f is None:
            continue
        top = m.split(".")[1] if m.count(".") >= 1 else ""
        package = PACKAGE_DIR / top
        if top != "llm" and (package / "__init__.py").is_file():
            files.update(
                p
                for p in package.rglob("*")
                if p.is_file() and "__pycache__" not in p.parts and p.suffix not in (".pyc", ".pyo")
            )
        else:
            files.add(f)
    templates = set()
    for f in files:
        if f.suffix != ".py":
            continue
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.endswith(".j2"):
                if (PROMPTS_DIR / node.value).is_file():
                    templates.add(PROMPTS_DIR / node.value)
    if templates:  # and the module that renders them (undefined values are errors, whitespace stripped)
        templates.add(PACKAGE_DIR / "prompts.py")
    return sorted(files | templates)


PREDICATE = ("autodata.judging.acceptance.decide", "autodata.judging.acceptance.check_weak")


def harness_files() -> list[Path]:
    """The loop's code that applies the acceptance predicate to what the scorers return, found by parsing.

    The judging package decides a score and what passes; the episode (``autodata.loop``) still picks
    which attempts reach the predicate (a reply without an answer is an attempt error, not a 0) and
    hands the scores over. A change there moves every decision as surely as one in the package (a
    round handing ``decide`` weak scores of 0 left the hash unchanged), so every module of the loop
    that imports the predicate (``PREDICATE``) is covered, with the runtime modules (``autodata.llm``)
    it imports directly (not their own imports: the runtime's transport stays outside).
    """
    loop = [p for p in sorted((PACKAGE_DIR / "loop").rglob("*.py")) if "__pycache__" not in p.parts]
    users = [p for p in loop if imported_modules([p]) & set(PREDICATE)]
    runtime = {
        f for m in imported_modules(users) if m.startswith("autodata.llm.") and (f := _module_file(m)) is not None
    }
    return sorted({*users, *runtime})


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
    from autodata.loop.episode import run_preset, run_roles  # the loop is below meta; imported late for clarity

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
