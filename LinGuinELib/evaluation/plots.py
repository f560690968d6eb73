"""One matplotlib figure per analysis, returned as PNG bytes (for files and the HTML report)."""

from __future__ import annotations

import io
import math
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display needed; must precede pyplot
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .analyses import target_rows, to_float  # noqa: E402


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()


def save_png(data: bytes, path: Path) -> Path:
    Path(path).write_bytes(data)
    return Path(path)


def plot_metric_boxes(rows: list[dict], metric: str = "dice", by: str = "configuration") -> bytes:
    """Box plot of a metric per group (target scans with truth present)."""
    groups: dict[str, list[float]] = defaultdict(list)
    for r in target_rows(rows):
        v = to_float(r.get(metric))
        if math.isfinite(v):
            groups[str(r.get(by, ""))].append(v)
    names = sorted(groups)
    fig, ax = plt.subplots(figsize=(max(4.0, 1.6 * len(names) + 2), 3.6))
    if names:
        ax.boxplot([groups[n] for n in names], showfliers=True)
        ax.set_xticks(range(1, len(names) + 1), names, rotation=15, ha="right", fontsize=8)
    ax.set_ylabel(metric)
    ax.set_title(f"{metric} per {by}")
    ax.grid(alpha=0.3)
    return _png(fig)


def plot_temporal(result: dict, title: str = "") -> bytes:
    """Metric against weeks from the source scan, with the linear fit."""
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    pts = np.array(result.get("points") or np.zeros((0, 2)), dtype=float).reshape(-1, 2)
    ax.scatter(pts[:, 0], pts[:, 1], s=14, alpha=0.6, label="lesion, scan")
    slope = result.get("slope_per_week", math.nan)
    if pts.size and math.isfinite(slope):
        xs = np.linspace(pts[:, 0].min(), pts[:, 0].max(), 20)
        ax.plot(xs, result["intercept"] + slope * xs, color="C3",
                label=f"fit: {slope:+.4f}/week, p={result['p_value']:.3g}")
    ax.set_xlabel("weeks from source scan (absolute)")
    ax.set_ylabel(result.get("metric", "dice"))
    ax.set_title(title or "Temporal degradation", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _png(fig)


def plot_direction(result: dict) -> bytes:
    """Per-lesion metric for each source choice: boxes plus one grey line per lesion."""
    names = result.get("sources", [])
    values = np.array(result.get("values") or np.zeros((0, len(names))), dtype=float)
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    if values.size:
        for row in values:
            ax.plot(range(1, len(names) + 1), row, color="0.75", lw=0.8, zorder=1)
        ax.boxplot(list(values.T), zorder=2)
    ax.set_xticks(range(1, len(names) + 1), names)
    p = result.get("p_value", math.nan)
    ax.set_title(f"Source scan choice (Friedman p={p:.3g})" if math.isfinite(p)
                 else "Source scan choice")
    ax.set_ylabel(f"mean {result.get('metric', 'dice')} per lesion")
    ax.grid(alpha=0.3)
    return _png(fig)


def plot_comparison(result: dict) -> bytes:
    """Paired values of two configurations, one point per (lesion, scan), identity line."""
    a = np.asarray(result.get("a", []), dtype=float)
    b = np.asarray(result.get("b", []), dtype=float)
    name_a, name_b = result.get("names", ["A", "B"])
    fig, ax = plt.subplots(figsize=(4.6, 4.2))
    ax.scatter(a, b, s=14, alpha=0.6)
    if a.size:
        lo, hi = float(min(a.min(), b.min())), float(max(a.max(), b.max()))
        ax.plot([lo, hi], [lo, hi], color="0.5", ls="--", lw=1)
    ax.set_xlabel(name_a, fontsize=8)
    ax.set_ylabel(name_b, fontsize=8)
    p = result.get("wilcoxon_p", math.nan)
    ax.set_title(f"{result.get('metric', 'dice')}: Wilcoxon p={p:.3g}" if math.isfinite(p)
                 else f"{result.get('metric', 'dice')} (paired)")
    ax.grid(alpha=0.3)
    return _png(fig)
