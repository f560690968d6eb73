"""trajectory.png: lesion volume over time, one line per lesion."""

from __future__ import annotations

from pathlib import Path

from .colors import lesion_color


def scan_positions(rows: list[dict]) -> tuple[bool, dict[str, float]]:
    """Each scan's x on a trajectory plot (the PNG here and Slicer's chart): days from the first
    scan when every scan is dated, else (a study without dates, or with some undated) every
    scan's place in time order; and whether x is days. ``rows``: trajectory rows in time order."""
    if all(r.get("days_from_first") is not None for r in rows):
        return True, {r["scan"]: float(r["days_from_first"]) for r in rows}
    return False, {scan: float(k) for k, scan in enumerate(dict.fromkeys(r["scan"] for r in rows))}


def series(rows: list[dict], lesion: str) -> tuple[list[float], list[dict]]:
    """A lesion's measured rows and their x (``scan_positions``), so a point stays at its own scan
    when an earlier scan has nothing measured (the line then joins the measured ones across it)."""
    _, x_of = scan_positions(rows)
    pts = [r for r in rows if r["lesion"] == lesion and r["volume_ml"] is not None]
    return [x_of[r["scan"]] for r in pts], pts


def plot_trajectory(rows: list[dict], lesion_ids: list[str], path: Path, title: str = "") -> None:
    # The object API, not pyplot: no global backend switch (this also runs inside Slicer's
    # Python) and no pyplot import; safe in a worker thread.
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 4.0), dpi=120)
    ax = fig.subplots()
    use_days, x_of = scan_positions(rows)
    for k, lesion in enumerate(lesion_ids):
        xs, pts = series(rows, lesion)
        if not pts:
            continue
        ax.plot(xs, [r["volume_ml"] for r in pts], "o-", color=lesion_color(k), label=lesion)
        for x, r in zip(xs, pts):
            if r["status"] == "prompt":
                ax.plot([x], [r["volume_ml"]], "*", ms=14, color=lesion_color(k), mec="k")
    if not use_days:
        ax.set_xticks(list(x_of.values()), list(x_of))
    ax.set_xlabel("days from first scan" if use_days else "scan")
    ax.set_ylabel("volume (mL)")
    ax.set_title(title or "Lesion volume over time (star: prompt)")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
