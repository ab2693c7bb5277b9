"""The acceptance predicate: part of the trusted core.

An example is accepted only if the harness, from the judge's marks, finds the weak solver low, the
strong solver high but not perfect, and the gap between them large. The decision and every reason
for a rejection are computed here, never taken from a model's say-so.

Presets (each threshold overridable by config):

- ``deployed`` (the paper's deployed setting): quality passed; weak mean ≤ 0.65, best weak ≤ 0.75,
  no weak attempt at 0; strong mean in [0.60, 0.95), no strong attempt at 0; gap ≥ 0.20.
- ``prose``: strong mean ≥ 0.65, weak mean < 0.50, gap ≥ 0.20.
- ``verifiable``: answers are right or wrong (score 1 or 0): at most 1 of 4 weak attempts right,
  at least 3 of 4 strong attempts right.
- ``judge`` (legal profile): a loop judge says accept or improve; code-level checks can only turn
  an accept into improve, never the other way round.
- ``code`` (code profile; a score is the fraction of hidden unit tests an attempt passes, run in
  the sandbox): weak mean ≤ 0.50 and no weak attempt passing every test; strong mean ≥ 0.80.

This module imports nothing of the project: the outer loop may never edit it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from statistics import fmean
from typing import Literal

# Machine-readable rejection codes, and the feedback group each belongs to (the groups are what
# the orchestrator tells the challenger: too easy / failed on strong / failed quality check).
REASONS: dict[str, str] = {
    "quality_failed": "quality",
    "weak_mean_too_high": "too_easy",
    "weak_best_too_high": "too_easy",
    "weak_too_many_correct": "too_easy",
    "weak_zero_attempt": "broken",
    "strong_mean_too_low": "failed_on_strong",
    "strong_too_few_correct": "failed_on_strong",
    "strong_zero_attempt": "failed_on_strong",
    "strong_mean_too_high": "too_easy",
    "gap_too_small": "failed_on_strong",
    "judge_improve": "judge",
    "no_attempts": "broken",
}

Stage = Literal["quality", "weak", "strong", "final"]


@dataclass(frozen=True, slots=True)
class Reason:
    code: str
    message: str
    group: str

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "group": self.group, "message": self.message}


@dataclass(frozen=True, slots=True)
class Decision:
    """Accepted, or rejected with reasons; ``stage`` says how far evaluation got."""

    accepted: bool
    stage: Stage
    reasons: tuple[Reason, ...] = ()
    weak_mean: float | None = None
    weak_best: float | None = None
    strong_mean: float | None = None
    gap: float | None = None

    @property
    def codes(self) -> list[str]:
        return [r.code for r in self.reasons]

    def to_dict(self) -> dict[str, object]:
        return {
            "accepted": self.accepted,
            "stage": self.stage,
            "reasons": [r.to_dict() for r in self.reasons],
            "weak_mean": self.weak_mean,
            "weak_best": self.weak_best,
            "strong_mean": self.strong_mean,
            "gap": self.gap,
        }


@dataclass(frozen=True, slots=True)
class Preset:
    """Thresholds of one acceptance predicate; ``None`` switches a check off."""

    name: str
    require_quality: bool = True
    weak_mean_max: float | None = None  # weak mean must be <= this
    weak_mean_below: float | None = None  # weak mean must be < this
    weak_best_max: float | None = None
    weak_no_zero: bool = False
    weak_correct_max: int | None = None  # verifiable: at most this many weak attempts correct
    strong_mean_min: float | None = None
    strong_mean_below: float | None = None  # strong mean must be < this (not trivially easy)
    strong_no_zero: bool = False
    strong_correct_min: int | None = None
    gap_min: float | None = None
    correct_at: float = 1.0  # an attempt is "correct" when its score reaches this
    judge_loop: bool = False  # the legal profile's accept/improve judge decides, checks may veto

    def with_overrides(self, **overrides: float | int | bool | None) -> Preset:
        allowed = {f.name for f in fields(self)} - {"name"}
        unknown = sorted(set(overrides) - allowed)
        if unknown:
            raise ValueError(f"unknown acceptance threshold(s) {unknown}; allowed: {', '.join(sorted(allowed))}")
        return replace(self, **overrides)


PRESETS: dict[str, Preset] = {
    "deployed": Preset(
        name="deployed",
        weak_mean_max=0.65,
        weak_best_max=0.75,
        weak_no_zero=True,
        strong_mean_min=0.60,
        strong_mean_below=0.95,
        strong_no_zero=True,
        gap_min=0.20,
    ),
    "prose": Preset(name="prose", weak_mean_below=0.50, strong_mean_min=0.65, gap_min=0.20),
    "verifiable": Preset(name="verifiable", weak_correct_max=1, strong_correct_min=3),
    "judge": Preset(name="judge", judge_loop=True, gap_min=0.0),
    "code": Preset(name="code", weak_mean_max=0.50, weak_correct_max=0, strong_mean_min=0.80),
}


def preset(name: str, **overrides: float | int | bool | None) -> Preset:
    try:
        base = PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown acceptance preset {name!r}; expected one of: {', '.join(PRESETS)}") from None
    return base.with_overrides(**overrides) if overrides else base


# Means of attempt scores carry float noise (fmean([0.95] * 3) == 0.9499999999999998); thresholds
# are compared with this tolerance so a mean exactly on a boundary is treated as on it.
EPS = 1e-9


def _above(x: float, limit: float) -> bool:
    return x > limit + EPS


def _below(x: float, limit: float) -> bool:
    return x < limit - EPS


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


@dataclass(slots=True)
class _Collector:
    reasons: list[Reason] = field(default_factory=list)

    def add(self, code: str, message: str) -> None:
        self.reasons.append(Reason(code=code, message=message, group=REASONS[code]))


def check_weak(p: Preset, weak: Sequence[float]) -> Decision:
    """Weak-first: rejected here means the strong solver need not be called at all."""
    c = _Collector()
    if not weak:
        c.add("no_attempts", "the weak solver produced no scored attempt")
        return Decision(False, "weak", tuple(c.reasons))
    wm, wb = fmean(weak), max(weak)
    if p.weak_mean_max is not None and _above(wm, p.weak_mean_max):
        c.add("weak_mean_too_high", f"too easy: weak avg {_pct(wm)} > {_pct(p.weak_mean_max)}")
    if p.weak_mean_below is not None and not _below(wm, p.weak_mean_below):
        c.add("weak_mean_too_high", f"too easy: weak avg {_pct(wm)} >= {_pct(p.weak_mean_below)}")
    if p.weak_best_max is not None and _above(wb, p.weak_best_max):
        c.add("weak_best_too_high", f"too easy: best weak attempt {_pct(wb)} > {_pct(p.weak_best_max)}")
    if p.weak_no_zero and min(weak) == 0.0:
        c.add("weak_zero_attempt", "a weak attempt scored 0: the question may be unanswerable from its context")
    if p.weak_correct_max is not None:
        right = sum(not _below(s, p.correct_at) for s in weak)
        if right > p.weak_correct_max:
            c.add(
                "weak_too_many_correct",
                f"too easy: weak solved {right} of {len(weak)} (at most {p.weak_correct_max} allowed)",
            )
    return Decision(not c.reasons, "weak", tuple(c.reasons), weak_mean=wm, weak_best=wb)


def decide(
    p: Preset,
    *,
    quality_passed: bool,
    weak: Sequence[float],
    strong: Sequence[float] | None,
    judge_verdict: Literal["accept", "improve"] | None = None,
    judge_reasons: Sequence[str] = (),
) -> Decision:
    """The full predicate. ``strong=None`` means it was not run (weak-first rejection)."""
    c = _Collector()
    if p.require_quality and not quality_passed:
        c.add("quality_failed", "failed quality check")
        return Decision(False, "quality", tuple(c.reasons))
    weak_dec = check_weak(p, weak)
    if not weak_dec.accepted or strong is None:
        return weak_dec
    if not strong:
        c.add("no_attempts", "the strong solver produced no scored attempt")
        return Decision(False, "strong", tuple(c.reasons), weak_mean=weak_dec.weak_mean, weak_best=weak_dec.weak_best)
    wm = weak_dec.weak_mean
    assert wm is not None
    sm = fmean(strong)
    gap = sm - wm
    summary = f"weak {_pct(wm)}, strong {_pct(sm)}, gap {100 * gap:.0f} points"
    if p.strong_mean_min is not None and _below(sm, p.strong_mean_min):
        c.add("strong_mean_too_low", f"failed on strong: {summary} (strong needs >= {_pct(p.strong_mean_min)})")
    if p.strong_mean_below is not None and not _below(sm, p.strong_mean_below):
        c.add(
            "strong_mean_too_high", f"too easy for strong: {summary} (strong must stay < {_pct(p.strong_mean_below)})"
        )
    if p.strong_no_zero and min(strong) == 0.0:
        c.add("strong_zero_attempt", f"failed on strong: a strong attempt scored 0 ({summary})")
    if p.strong_correct_min is not None:
        right = sum(not _below(s, p.correct_at) for s in strong)
        if right < p.strong_correct_min:
            c.add(
                "strong_too_few_correct",
                f"failed on strong: strong solved {right} of {len(strong)} (needs {p.strong_correct_min})",
            )
    if p.gap_min is not None and _below(gap, p.gap_min):
        c.add("gap_too_small", f"failed on strong: {summary} (gap needs >= {100 * p.gap_min:.0f} points)")
    if p.judge_loop:
        if judge_verdict is None:
            raise ValueError("the judge preset needs the loop judge's verdict")
        if judge_verdict != "accept":
            why = "; ".join(judge_reasons) or "no reason given"
            c.add("judge_improve", f"loop judge asks to improve: {why}")
    return Decision(
        not c.reasons,
        "final",
        tuple(c.reasons),
        weak_mean=wm,
        weak_best=weak_dec.weak_best,
        strong_mean=sm,
        gap=gap,
    )


def feedback(reasons: Sequence[Reason]) -> dict[str, list[str]]:
    """Reasons grouped the way the orchestrator reports them to the challenger."""
    grouped: dict[str, list[str]] = {}
    for r in reasons:
        grouped.setdefault(r.group, []).append(r.message)
    return grouped


# --------------------------------------------------------------------------- adaptive stopping
#
# Solver attempts can be drawn a few at a time and sampling stopped as soon as the predicate's
# verdict can no longer change, whatever the attempts not yet drawn would score. Each test below
# only fires when *every* completion of the attempts (any scores in [0, 1], some possibly unscored)
# is rejected, so a stopped round gets the same accept/reject decision as the full rule; only its
# list of reasons may be shorter. ``remaining`` is the number of attempts not yet drawn.


def weak_settled(p: Preset, drawn: Sequence[float], remaining: int) -> bool:
    """True when the weak attempts drawn so far already make ``check_weak`` reject."""
    if not drawn:
        return False
    low_mean = sum(drawn) / (len(drawn) + remaining)  # the remaining attempts scoring 0
    if p.weak_best_max is not None and _above(max(drawn), p.weak_best_max):
        return True
    if p.weak_no_zero and min(drawn) == 0.0:
        return True
    if p.weak_mean_max is not None and _above(low_mean, p.weak_mean_max):
        return True
    if p.weak_mean_below is not None and not _below(low_mean, p.weak_mean_below):
        return True
    right = sum(not _below(s, p.correct_at) for s in drawn)
    return p.weak_correct_max is not None and right > p.weak_correct_max


def strong_settled(p: Preset, drawn: Sequence[float], remaining: int, weak_mean: float) -> bool:
    """True when the strong attempts drawn so far already make ``decide`` reject (weak already passed)."""
    if not drawn:
        return False
    n = len(drawn) + remaining
    low_mean, high_mean = sum(drawn) / n, (sum(drawn) + remaining) / n
    if p.strong_no_zero and min(drawn) == 0.0:
        return True
    if p.strong_mean_below is not None and not _below(low_mean, p.strong_mean_below):
        return True
    if p.strong_mean_min is not None and _below(high_mean, p.strong_mean_min):
        return True
    if p.gap_min is not None and _below(high_mean - weak_mean, p.gap_min):
        return True
    right = sum(not _below(s, p.correct_at) for s in drawn)
    return p.strong_correct_min is not None and right + remaining < p.strong_correct_min
