"""The validation pass rate over iterations, like the paper's figure: every child, and the best so far."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def pass_rate_plot(population: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    root = population[0]
    best, xs, ys = root["val_mean"], [0], [100 * root["val_mean"]]
    kept_x, kept_y, lost_x, lost_y = [], [], [], []
    for c in population[1:]:
        x = c["iteration"] + 1
        if c.get("val_mean") is not None:
            (kept_x if c["accepted"] else lost_x).append(x)
            (kept_y if c["accepted"] else lost_y).append(100 * c["val_mean"])
            if c["accepted"]:
                best = max(best, c["val_mean"])
        xs.append(x)
        ys.append(100 * best)
    ax.step(xs, ys, where="post", color="#1f6feb", label="best so far")
    ax.scatter(lost_x, lost_y, marker="x", color="#999999", label="child discarded")
    ax.scatter(kept_x, kept_y, marker="o", color="#2da44e", label="child kept")
    ax.set_xlabel("iteration")
    ax.set_ylabel("validation pass rate (%)")
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
