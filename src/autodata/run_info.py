"""What a run directory says about itself: its recipe, models, acceptance preset and counts.

Review, report and export all describe a run the same way; they read it from the store's metadata
(the redacted config saved by ``autodata run``), never from a config file that may have changed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from autodata.judging.acceptance import Preset, preset
from autodata.loop.profile import profile
from autodata.store.run_store import RunStore


@dataclass(frozen=True, slots=True)
class RunInfo:
    recipe_hash: str | None
    profile: str
    preset: Preset | None  # None when the stored config names no preset this version knows
    preset_name: str
    preset_overrides: dict[str, Any]
    models: dict[str, str]  # role -> served model name
    simulated: bool
    config: dict[str, Any]

    @classmethod
    def load(cls, store: RunStore) -> RunInfo:
        cfg = store.get_meta("config") or {}
        loop = cfg.get("loop") or {}
        acceptance = loop.get("acceptance") or {}
        profile_name = str(loop.get("profile") or "rubric-qa")
        try:
            default = profile(profile_name).preset  # a config that names no preset gets its profile's
        except ValueError:
            default = "deployed"
        name = str(acceptance.get("preset") or default)
        overrides = dict(acceptance.get("overrides") or {})
        try:
            p: Preset | None = preset(name, **overrides)
        except ValueError:
            p = None
        endpoints = cfg.get("models") or {}
        models = {
            role: str((endpoints.get(ep) or {}).get("model", ep))
            for role, ep in sorted((cfg.get("roles") or {}).items())
        }
        simulated = any(
            (endpoints.get(ep) or {}).get("provider") == "simulated" for ep in (cfg.get("roles") or {}).values()
        ) or bool(store.get_meta("simulated_endpoints"))  # a server that said it is the simulator
        return cls(store.get_meta("recipe_hash"), profile_name, p, name, overrides, models, simulated, cfg)

    def thresholds(self) -> dict[str, Any]:
        """The preset's active checks, for display: only thresholds that are switched on."""
        if self.preset is None:
            return {}
        out = {k: v for k, v in asdict(self.preset).items() if k != "name" and v not in (None, False)}
        if self.preset.weak_correct_max is None and self.preset.strong_correct_min is None:
            out.pop("correct_at", None)  # only the count-based checks use it
        return out
