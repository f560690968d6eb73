"""trajectory.png: lesion volume over time, one line per lesion."""

from __future__ import annotations

from pathlib import Path

from .colors import lesion_color


def _axis(rows: list[dict]) -> tuple[bool, list[str]]:
    """Whether x is days from the first scan (every scan dated), and the scans in time order."""
    return all(r["days_from_first"] is not None for r in rows), list(dict.fromkeys(r["scan"] for r in rows))


def series(rows: list[dict], lesion: str) -> tuple[list[float], list[dict]]:
    """A lesion's measured rows and their x: days from the first scan, or (a study without dates)
    the scan's place in time order, so a point stays at its own scan when an earlier scan has
    nothing measured (the line then joins the measured ones across it)."""
    use_days, scans = _axis(rows)
    pts = [r for r in rows if r["lesion"] == lesion and r["volume_ml"] is not None]
    return [r["days_from_first"] if use_days else scans.index(r["scan"]) for r in pts], pts


def plot_trajectory(rows: list[dict], lesion_ids: list[str], path: Path, title: str = "") -> None:
    # The object API, not pyplot: no global backend switch (this also runs inside Slicer's
    # Python) and no pyplot import; safe in a worker thread.
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 4.0), dpi=120)
    ax = fig.subplots()
    use_days, scans = _axis(rows)
    for k, lesion in enumerate(lesion_ids):
        xs, pts = series(rows, lesion)
        if not pts:
            continue
        ax.plot(xs, [r["volume_ml"] for r in pts], "o-", color=lesion_color(k), label=lesion)
        for x, r in zip(xs, pts):
            if r["status"] == "prompt":
                ax.plot([x], [r["volume_ml"]], "*", ms=14, color=lesion_color(k), mec="k")
    if not use_days:
        ax.set_xticks(range(len(scans)), scans)
    ax.set_xlabel("days from first scan" if use_days else "scan")
    ax.set_ylabel("volume (mL)")
    ax.set_title(title or "Lesion volume over time (star: prompt)")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
