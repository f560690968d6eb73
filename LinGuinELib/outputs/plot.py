"""trajectory.png: lesion volume over time, one line per lesion."""

from __future__ import annotations

from pathlib import Path

from .colors import lesion_color


def plot_trajectory(rows: list[dict], lesion_ids: list[str], path: Path, title: str = "") -> None:
    # The object API, not pyplot: no global backend switch (this also runs inside Slicer's
    # Python) and no pyplot import; safe in a worker thread.
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 4.0), dpi=120)
    ax = fig.subplots()
    use_days = all(r["days_from_first"] is not None for r in rows)
    for k, lesion in enumerate(lesion_ids):
        pts = [r for r in rows if r["lesion"] == lesion and r["volume_ml"] is not None]
        if not pts:
            continue
        xs = [r["days_from_first"] for r in pts] if use_days else list(range(len(pts)))
        ax.plot(xs, [r["volume_ml"] for r in pts], "o-", color=lesion_color(k), label=lesion)
        for x, r in zip(xs, pts):
            if r["status"] == "prompt":
                ax.plot([x], [r["volume_ml"]], "*", ms=14, color=lesion_color(k), mec="k")
    scans = list(dict.fromkeys(r["scan"] for r in rows))
    if not use_days:
        ax.set_xticks(range(len(scans)), scans)
    ax.set_xlabel("days from first scan" if use_days else "scan")
    ax.set_ylabel("volume (mL)")
    ax.set_title(title or "Lesion volume over time (star: prompt)")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
