"""Recipes: the editable half of the harness, and the frozen half it may never touch.

A recipe is a small set of named text components (the orchestrator's, challenger's and quality
verifier's instructions) plus declared numeric knobs (the round budget), with a content hash and a
parent. It is applied onto a config's ``loop`` section and nothing else.

Everything that measures a recipe is frozen (:mod:`autodata.frozen` finds it and fingerprints it:
the judging package, the loop code that picks a scorer or hands scores to the predicate, the model
runtime and sandbox they call, and the frozen settings; its names are re-exported here). The optimizer
records :func:`frozen_hash` at the start and checks it before every evaluation, so a changed file, config
or model between iterations aborts the evaluation instead of silently moving the goalposts.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

from autodata.config import DIRECTIVES, Config, unknown_directives
from autodata.errors import UserError
from autodata.frozen import (  # noqa: F401  (re-exported: the outer loop's names for the frozen half)
    DECIDING,
    JUDGING_DIR,
    PACKAGE_DIR,
    PROMPTS_DIR,
    frozen_files,
    frozen_hash,
    frozen_parts,
    frozen_settings,
    harness_files,
    imported_modules,
    interface_files,
    judging_files,
)

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
