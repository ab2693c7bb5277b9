"""The report's figures: each a pure function of :class:`RunData` returning a matplotlib Figure.

matplotlib runs headless (Agg) and figures are embedded as PNG data URIs, so the report is one file
that opens offline. Each figure says what it shows when there is nothing to show, rather than
drawing empty axes.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from autodata.judging.acceptance import Preset
from autodata.report.data import RunData

ACCEPTED, REJECTED, NEUTRAL = "#1f7a3a", "#b3261e", "#4a6fa5"
MEAN_CHECKS = ("weak_mean_max", "weak_mean_below", "strong_mean_min", "strong_mean_below", "gap_min")


@dataclass(frozen=True, slots=True)
class Figure_:
    """One figure of the report: an id for links and tests, a title, a caption, the picture."""

    id: str
    title: str
    caption: str
    png: str  # data URI


def png_uri(fig: Figure, dpi: int = 100) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _empty(ax: plt.Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="#6b7078")
    ax.set_xticks([])
    ax.set_yticks([])


def _integer_counts(axis: Any) -> None:
    """Counts are whole numbers: no 2.5 documents on an axis."""
    axis.set_major_locator(MaxNLocator(integer=True))


def funnel(d: RunData) -> Figure:
    fig, ax = plt.subplots(figsize=(7.5, 0.45 * len(d.funnel) + 0.8))
    labels = [k for k, _ in d.funnel][::-1]
    values = [v for _, v in d.funnel][::-1]
    colors = [ACCEPTED if "accepted" in k or "approved" in k else NEUTRAL for k in labels]
    bars = ax.barh(labels, values, color=colors)
    first = values[-1] if values else 0
    ax.bar_label(bars, labels=[f"{v} ({100 * v / first:.0f}%)" if first else str(v) for v in values], padding=3)
    ax.set_xlabel("documents (each step: those with a round that got this far)")
    ax.set_xlim(0, max(values + [1]) * 1.25)
    _integer_counts(ax.xaxis)
    ax.spines[["top", "right"]].set_visible(False)
    return fig


def rejection_reasons(d: RunData) -> Figure:
    fig, ax = plt.subplots(figsize=(7.5, 0.4 * max(3, len(d.rejections)) + 0.8))
    if not d.rejections:
        _empty(ax, "no round was rejected")
        return fig
    items = d.rejections.most_common()[::-1]
    bars = ax.barh([k for k, _ in items], [v for _, v in items], color=REJECTED)
    ax.bar_label(bars, padding=3)
    ax.set_xlabel("rounds rejected for this reason (a round can have several)")
    _integer_counts(ax.xaxis)
    ax.spines[["top", "right"]].set_visible(False)
    return fig


def rounds_per_accepted(d: RunData) -> Figure:
    fig, ax = plt.subplots(figsize=(6, 3.2))
    if not d.rounds_per_accepted:
        _empty(ax, "no accepted example yet")
        return fig
    top = max(d.max_rounds, max(d.rounds_per_accepted))
    xs = list(range(1, top + 1))
    counts = [d.rounds_per_accepted.count(x) for x in xs]
    bars = ax.bar(xs, counts, color=ACCEPTED)
    ax.bar_label(bars, padding=2)
    ax.set_xticks(xs)
    ax.set_xlabel("rounds the document needed")
    ax.set_ylabel("accepted examples")
    _integer_counts(ax.yaxis)
    ax.spines[["top", "right"]].set_visible(False)
    return fig


def acceptance_mask(p: Preset, weak: np.ndarray, strong: np.ndarray) -> np.ndarray | None:
    """Where the preset's thresholds on means accept, on a grid of (weak mean, strong mean); None
    when the preset has no mean thresholds (it counts correct attempts or asks a loop judge)."""
    if not any(getattr(p, name) for name in MEAN_CHECKS):
        return None
    ok = np.ones_like(weak, dtype=bool)
    eps = 1e-9
    if p.weak_mean_max is not None:
        ok &= weak <= p.weak_mean_max + eps
    if p.weak_mean_below is not None:
        ok &= weak < p.weak_mean_below - eps
    if p.strong_mean_min is not None:
        ok &= strong >= p.strong_mean_min - eps
    if p.strong_mean_below is not None:
        ok &= strong < p.strong_mean_below - eps
    if p.gap_min is not None:
        ok &= strong - weak >= p.gap_min - eps
    return ok


def weak_vs_strong(d: RunData) -> Figure:
    fig, ax = plt.subplots(figsize=(5.8, 5.2))
    grid = np.linspace(0, 1, 401)
    weak, strong = np.meshgrid(grid, grid)
    mask = acceptance_mask(d.info.preset, weak, strong) if d.info.preset else None
    if mask is not None and mask.any():
        ax.contourf(weak, strong, mask.astype(float), levels=[0.5, 1.5], colors=[ACCEPTED], alpha=0.12)
        ax.contour(weak, strong, mask.astype(float), levels=[0.5], colors=[ACCEPTED], linewidths=1)
    rej = [p for p in d.points if not p.accepted]
    acc = [p for p in d.points if p.accepted]
    ax.scatter([p.weak for p in rej], [p.strong for p in rej], s=22, c=REJECTED, alpha=0.6, label="rejected round")
    ax.scatter([p.weak for p in acc], [p.strong for p in acc], s=26, c=ACCEPTED, label="accepted")
    ax.plot([0, 1], [0, 1], color="#999", linewidth=0.8, linestyle=":")
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("weak solver mean score")
    ax.set_ylabel("strong solver mean score")
    ax.set_aspect("equal")
    if d.points:
        ax.legend(loc="lower right", fontsize=8)
    else:
        ax.text(0.5, 0.5, "no round reached the strong solver", ha="center", transform=ax.transAxes)
    return fig


def gap_histogram(d: RunData) -> Figure:
    fig, ax = plt.subplots(figsize=(6.5, 3.2))
    if not d.gaps_accepted and not d.gaps_rejected:
        _empty(ax, "no round reached the strong solver")
        return fig
    bins = gap_bins([*d.gaps_accepted, *d.gaps_rejected], d.info.preset.gap_min if d.info.preset else None)
    ax.hist(d.gaps_rejected, bins=bins, color=REJECTED, alpha=0.55, label="rejected rounds")
    ax.hist(d.gaps_accepted, bins=bins, color=ACCEPTED, alpha=0.8, label="accepted")
    ax.set_xlim(bins[0], bins[-1])
    _integer_counts(ax.yaxis)
    p = d.info.preset
    if p is not None and p.gap_min:
        ax.axvline(p.gap_min, color="#333", linestyle="--", linewidth=1, label=f"gap_min {p.gap_min:g}")
    ax.set_xlabel("gap = strong mean − weak mean")
    ax.set_ylabel("rounds")
    ax.legend(fontsize=8)
    ax.spines[["top", "right"]].set_visible(False)
    return fig


def gap_bins(gaps: list[float], gap_min: float | None = None, width: float = 0.05) -> np.ndarray:
    """Bin edges on a ``width`` grid spanning the data (and the preset's ``gap_min`` line), one
    empty bin of margin each side, within [-1, 1]: the axis fits the data."""
    values = [*gaps, *([gap_min] if gap_min is not None else [])]
    lo = max(-1.0, np.floor(min(values) / width) * width - width)
    hi = min(1.0, np.ceil(max(values) / width) * width + width)
    if hi - lo < 4 * width:  # a single value: a little room either side
        lo, hi = max(-1.0, lo - width), min(1.0, hi + width)
    return np.round(np.arange(lo, hi + width / 2, width), 10)


def question_and_rubric(d: RunData) -> Figure:
    fig, (left, right) = plt.subplots(1, 2, figsize=(8, 3.2))
    if not d.question_words:
        _empty(left, "no accepted example yet")
        _empty(right, "no accepted example yet")
        return fig
    left.hist(d.question_words, bins=min(20, max(5, len(set(d.question_words)))), color=NEUTRAL)
    left.set_xlabel("question length (words)")
    left.set_ylabel("accepted examples")
    _integer_counts(left.yaxis)
    _integer_counts(right.yaxis)
    sizes = sorted(set(d.rubric_sizes))
    bars = right.bar(sizes, [d.rubric_sizes.count(s) for s in sizes], color=NEUTRAL)
    right.bar_label(bars, padding=2)
    right.set_xticks(sizes)
    right.set_xlim(min(sizes) - 1.5, max(sizes) + 1.5)  # one size alone is a bar, not a wall
    right.set_xlabel("rubric criteria")
    for ax in (left, right):
        ax.spines[["top", "right"]].set_visible(False)
    return fig


def cost_and_tokens(d: RunData) -> Figure:
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.4))
    roles = sorted(d.usage_by_role)
    if not roles:
        _empty(left, "no usage recorded")
    else:
        tin = [d.usage_by_role[r]["input_tokens"] / 1000 for r in roles]
        tout = [d.usage_by_role[r]["output_tokens"] / 1000 for r in roles]
        left.barh(roles, tin, color=NEUTRAL, label="input")
        left.barh(roles, tout, left=tin, color="#e0a030", label="output")
        left.set_xlabel("thousand tokens (cached answers included)")
        left.legend(fontsize=8)
        left.spines[["top", "right"]].set_visible(False)
    if not d.tokens_per_document:
        _empty(right, "tokens per document not recorded for this run")
    else:
        every = [v / 1000 for vs in d.tokens_per_document.values() for v in vs]
        bins = np.histogram_bin_edges(every, bins=min(15, max(3, len(every))))  # shared: bars comparable
        for status, color in (("exhausted", REJECTED), ("accepted", ACCEPTED)):
            values = [v / 1000 for v in d.tokens_per_document.get(status, [])]
            if values:
                right.hist(values, bins=bins, color=color, alpha=0.6, label=status)
        right.set_xlabel("thousand tokens per document (all its rounds)")
        right.set_ylabel("documents")
        _integer_counts(right.yaxis)
        right.legend(fontsize=8)
        right.spines[["top", "right"]].set_visible(False)
    return fig


FigureFn = Callable[[RunData], Figure]

# (id, title, caption, function): the run report, in reading order.
RUN_FIGURES: list[tuple[str, str, str, FigureFn]] = [
    (
        "funnel",
        "Acceptance funnel",
        "Documents, step by step: how many had a round that passed each check, then accepted and approved.",
        funnel,
    ),
    ("rejections", "Rejection reasons", "Why rounds were rejected, by the harness's reason codes.", rejection_reasons),
    ("rounds", "Rounds per accepted example", "How many challenger rounds a document needed.", rounds_per_accepted),
    (
        "scatter",
        "Weak vs strong scores",
        "Each round that reached the strong solver. Shaded: where the preset's thresholds on means accept "
        "(best-attempt and zero-attempt checks apply on top).",
        weak_vs_strong,
    ),
    ("gaps", "Gap histogram", "Strong mean minus weak mean, accepted and rejected rounds.", gap_histogram),
    ("shape", "Question length and rubric size", "Of the accepted examples.", question_and_rubric),
    (
        "cost",
        "Tokens per role and per document",
        "Where the tokens behind the examples went, answers from the call cache included.",
        cost_and_tokens,
    ),
]


def render(d: RunData, specs: list[tuple[str, str, str, FigureFn]]) -> list[Figure_]:
    return [Figure_(fid, title, caption, png_uri(fn(d))) for fid, title, caption, fn in specs]


def pass_rate_figure(population: list[dict[str, Any]]) -> str:
    """The optimizer's own pass-rate plot (``meta.plot``), drawn into memory instead of a file."""
    from autodata.meta.plot import pass_rate_plot

    buf = io.BytesIO()
    pass_rate_plot(population, buf)  # type: ignore[arg-type]  # savefig takes a file object as well
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def lineage_figure(population: list[dict[str, Any]]) -> str:
    fig, ax = plt.subplots(figsize=(7.5, 4))
    where: dict[str, tuple[int, float]] = {}
    for c in population:
        if c.get("val_mean") is None:
            continue  # refused or unchanged children were never evaluated
        x, y = c["iteration"] + 1, 100 * c["val_mean"]
        parent = where.get(c.get("parent") or "")
        if parent is not None:
            ax.plot([parent[0], x], [parent[1], y], color="#bbb", linewidth=0.8, zorder=1)
        kept = bool(c.get("accepted"))
        ax.scatter([x], [y], s=36, c=ACCEPTED if kept else "#999", marker="o" if kept else "x", zorder=2)
        ax.annotate(str(c.get("hash", ""))[:6], (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
        if kept:
            where[c["hash"]] = (x, y)
    ax.set_xlabel("iteration (0: the starting recipe)")
    ax.set_ylabel("validation pass rate (%)")
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    return png_uri(fig)
