"""A self-contained HTML report of one or more batch outputs: tables and plots inline.

Plots are embedded as base64 PNG and the style sheet is inline, so the file opens in any browser
with nothing else (no Python, no network). The numbers behind the analyses are written next to
it as JSON.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import html
import itertools
import json
import logging
import math
import os
from collections import defaultdict
from pathlib import Path

from ..errors import InputError
from ..outputs.safety import check_folder_writable, check_replaceable, record_written
from ..quality.scoring import flag_scores, is_bad
from ..textio import read_json, write_text_atomic
from .analyses import (
    compare_configurations,
    direction_agnosticism,
    summarise,
    temporal_degradation,
)
from .evaluate import batch_studies, evaluate_batch, read_table, read_trajectory, write_table
from .plots import plot_comparison, plot_direction, plot_metric_boxes, plot_temporal

log = logging.getLogger(__name__)

DIRECTIONS = ("earliest", "middle", "latest")
MAX_COMPARISONS = 6
MAX_STUDY_TABLES = 50
REPORT_TITLE = "<title>LinGuinE report</title>"  # also how an earlier report is recognised (replaceable)
# The analyses file's first key says what it is, so an earlier one is recognised whatever the JSON layout;
# files of the release before it (session 7) began with their first key, "summary", indented by 2.
ANALYSES_FORMAT = "LinGuinE report analyses"
_ANALYSES_SIGNATURES = (json.dumps(ANALYSES_FORMAT).encode(), b'{\n  "summary"')
_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em;
color:#222;max-width:1200px}
h1{font-size:1.6em}h2{font-size:1.25em;border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:.6em 0;font-size:.85em}
th,td{border:1px solid #ddd;padding:.25em .5em;text-align:right}
th{background:#f3f3f3}td.l,th.l{text-align:left}
.note{color:#666;font-size:.85em}img{max-width:100%;margin:.5em 0}
.fail{color:#a00}
"""


def _fmt(v, digits: int = 3) -> str:
    if v is None or v == "":
        return ""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        if math.isnan(v):
            return "–"
        return f"{v:.{digits}g}" if abs(v) < 1000 else f"{v:.0f}"
    return str(v)


def _table(rows: list[dict], columns: list[str], headers: list[str] | None = None) -> str:
    headers = headers or columns
    out = ["<table><tr>"]
    out += [f'<th class="l">{html.escape(h)}</th>' if i < 1 else f"<th>{html.escape(h)}</th>"
            for i, h in enumerate(headers)]
    out.append("</tr>")
    for r in rows:
        cells = []
        for c in columns:
            v = r.get(c, "")
            cls = ' class="l"' if isinstance(v, str) and not _numeric(v) else ""
            cells.append(f"<td{cls}>{html.escape(_fmt(v))}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</table>")
    return "".join(out)


def _numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _img(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _median_iqr(s: dict, metric: str) -> str:
    med, q1, q3 = s.get(f"{metric}_median"), s.get(f"{metric}_q1"), s.get(f"{metric}_q3")
    if med is None or (isinstance(med, float) and math.isnan(med)):
        return "–"
    return f"{_fmt(med)} [{_fmt(q1)}–{_fmt(q3)}]"


class _Run:
    """One batch output folder: its settings, study states and evaluation rows (``written``: the
    files this report wrote into it, evaluated here because ``linguine evaluate`` was not run)."""

    def __init__(self, out: Path) -> None:
        self.out = Path(out)
        info = self.out / "batch.json"
        if not info.is_file():
            raise InputError(f"{self.out}: not a `linguine batch` output (no batch.json)")
        self.info = read_json(info, "batch record")
        if not isinstance(self.info, dict):
            raise InputError(f"{info}: not a batch record (expected a JSON object)")
        self.source = self.info.get("source", "manifest")
        self.failures = _read_csv(self.out / "failures.csv")
        self.written: list[Path] = []
        self.rows = self._rows()

    def _rows(self) -> list[dict]:
        path = self.out / "evaluation.csv"
        if path.is_file():
            return read_table(path)
        if not self.info:
            return []
        rows, _ = evaluate_batch(self.out)  # a hand-edited table fails the report, as it fails evaluate
        if rows and os.access(self.out, os.W_OK | os.X_OK):  # kept for next time; a read-only OUT is only read
            write_table(rows, path)
            self.written.append(path)
        return rows

    def study_states(self) -> list[dict]:
        states = []
        studies = batch_studies(self.info, self.out / "batch.json") or {
            p.name: {"folder": p.name} for p in self.out.iterdir() if (p / "run.json").is_file()}
        for pid in sorted(studies):
            folder = self.out / studies[pid]["folder"]
            if (folder / "run.json").is_file():
                state, reason = "done", ""
            elif pid in self.failures:
                state, reason = "failed", self.failures[pid].get("message", "")
            else:
                state, reason = "not run", ""
            states.append({"patient_id": pid, "state": state, "reason": reason,
                           "trajectory": read_trajectory(folder / "trajectory.csv")})
        return states


def _read_csv(path: Path) -> dict[str, dict]:
    return {r.get("patient_id") or "": r for r in _read_rows(path)}


def _read_rows(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            return list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"{path}: not a readable table ({exc})") from None


def _disambiguate(runs: list[_Run]) -> None:
    """Two folders with the same configuration name get the folder name appended."""
    seen: dict[str, int] = defaultdict(int)
    for run in runs:
        for name in {r.get("configuration", "") for r in run.rows}:
            seen[name] += 1
    for run in runs:
        for r in run.rows:
            if seen[r.get("configuration", "")] > 1:
                r["configuration"] = f"{r.get('configuration', '')} ({run.out.name})"


def build_report(outs: list[Path], html_path: Path | None = None) -> Path:
    """Write the HTML report (default OUT/report.html of the first folder) and analyses.json."""
    if not outs:
        raise InputError("report: no output folder given")
    for k, out in enumerate(outs):
        if not Path(out).is_dir():
            raise InputError(f"{out}: not a folder")
        twice = next((o for o in outs[:k] if os.path.samefile(o, out)), None)
        if twice is not None:  # its rows counted twice, or compared with themselves as another run
            raise InputError(f"{out}: the same folder as '{twice}', given twice; give each batch output once")
    html_path = Path(html_path) if html_path else Path(outs[0]) / "report.html"
    check_folder_writable(html_path.parent, str(html_path))
    _check_replaceable(html_path)  # before anything is written (evaluation.csv included)
    runs = [_Run(Path(o)) for o in outs]
    _disambiguate(runs)
    rows = [r for run in runs for r in run.rows]
    by_config: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        by_config[r.get("configuration", "")].append(r)
    parts = [f"<h1>LinGuinE report</h1><p class=note>Generated "
             f"{dt.datetime.now().isoformat(timespec='seconds')} from "
             f"{html.escape(', '.join(str(o) for o in outs))}.</p>"]
    analyses: dict = {"format": ANALYSES_FORMAT, "summary": [], "temporal": {}, "comparisons": [],
                      "direction": None}

    parts.append("<h2>Runs</h2>")
    for run in runs:
        states = run.study_states()
        counts = {s: sum(x["state"] == s for x in states) for s in ("done", "failed", "not run")}
        cfg = run.info.get("config", {})
        parts.append(f"<p><b>{html.escape(str(run.out))}</b>: dataset "
                     f"{html.escape(str(run.info.get('dataset', '?')))}; registration "
                     f"{html.escape(str(cfg.get('registration', '?')))}, segmentation "
                     f"{html.escape(str(cfg.get('segmentation', '?')))}, mode "
                     f"{html.escape(str(cfg.get('mode', '?')))}, source {html.escape(run.source)}. "
                     f"Studies: {counts['done']} done, {counts['failed']} failed, "
                     f"{counts['not run']} not run.</p>")
        failed = [s for s in states if s["state"] == "failed"]
        if failed:
            parts.append('<p class="fail">Failed studies:</p>'
                         + _table(failed, ["patient_id", "reason"]))

    parts += _review_section(runs)

    if rows:
        summary = summarise(rows)
        analyses["summary"] = summary
        for s in summary:
            for m in ("dice", "centre_distance_mm", "hd95_mm", "assd_mm"):
                s[m] = _median_iqr(s, m)
        parts.append("<h2>Summary (target scans; median [IQR])</h2>")
        parts.append(_table(summary, ["dataset", "configuration", "lesions", "pairs", "dice",
                                      "centre_distance_mm", "hd95_mm", "assd_mm",
                                      "tracking_success_rate", "detection_rate",
                                      "disappearance_accuracy"],
                            ["dataset", "configuration", "lesions", "pairs", "Dice",
                             "centre dist. mm", "HD95 mm", "ASSD mm", "tracking success",
                             "detection", "disappearance acc."]))
        parts.append('<p class="note">Dice is over lesions present in the truth; an empty '
                     "prediction there counts as Dice 0 and a miss. Tracking success: a hit (Dice "
                     "of at least 0.1 unless set otherwise in evaluate), or an empty prediction "
                     "where the lesion disappeared."
                     "</p>")
        parts.append(_img(plot_metric_boxes(rows), "Dice per configuration"))

        parts.append("<h2>Temporal degradation</h2>")
        trows = []
        for name in sorted(by_config):
            t = temporal_degradation(by_config[name])
            analyses["temporal"][name] = {k: v for k, v in t.items() if k != "points"}
            trows.append({"configuration": name, "n": t["n"], "slope per week": t["slope_per_week"],
                          "intercept": t["intercept"], "r": t["r"], "p": t["p_value"]})
            parts.append(_img(plot_temporal(t, f"Dice vs weeks from source: {name}"), name))
        parts.insert(len(parts) - len(by_config),
                     _table(trows, ["configuration", "n", "slope per week", "intercept", "r", "p"]))

        names = sorted(by_config)
        if len(names) >= 2:
            parts.append("<h2>Configurations compared on the same lesions and scans</h2>")
            crows = []
            for a, b in list(itertools.combinations(names, 2))[:MAX_COMPARISONS]:
                c = compare_configurations(by_config[a], by_config[b], names=(a, b))
                analyses["comparisons"].append({k: v for k, v in c.items()
                                                if k not in ("a", "b", "pairs")})
                crows.append({"A": a, "B": b, "pairs": c["n"],
                              "median A": c["summary"][a]["median"],
                              "median B": c["summary"][b]["median"],
                              "median B−A": c["median_difference"],
                              "Wilcoxon p": c["wilcoxon_p"], "paired t p": c["t_p"]})
                parts.append(_img(plot_comparison(c), f"{a} vs {b}"))
            parts.insert(len(parts) - len(crows), _table(
                crows, ["A", "B", "pairs", "median A", "median B", "median B−A", "Wilcoxon p",
                        "paired t p"]))
        direction = _direction_sets(runs, by_config)
        if direction:
            title, sets = direction
            d = direction_agnosticism(sets)
            analyses["direction"] = {k: v for k, v in d.items() if k not in ("values", "lesions")}
            parts.append(f"<h2>{html.escape(title)}</h2>")
            drows = [{"source": n, "lesions": d["summary"][n]["n"],
                      "median": d["summary"][n]["median"], "q1": d["summary"][n]["q1"],
                      "q3": d["summary"][n]["q3"]} for n in d["sources"]]
            parts.append(_table(drows, ["source", "lesions", "median", "q1", "q3"]))
            parts.append(f"<p>Friedman test over {len(d['lesions'])} lesions: statistic "
                         f"{_fmt(d['statistic'])}, p = {_fmt(d['p_value'])}. "
                         f"{html.escape(d.get('note', ''))}</p>")
            parts.append(_img(plot_direction(d), "source choice"))
    else:
        parts.append('<p class="note">No evaluation (no truth labels): tracking tables only.</p>')

    parts.append("<h2>Per study</h2>")
    for run in runs:
        shown = [s for s in run.study_states() if s["trajectory"]]
        if len(shown) > MAX_STUDY_TABLES:
            parts.append(f'<p class="note">{run.out.name}: first {MAX_STUDY_TABLES} of '
                         f"{len(shown)} studies; the rest are in each study's trajectory.csv.</p>")
        for s in shown[:MAX_STUDY_TABLES]:
            parts.append(f"<h3>{html.escape(s['patient_id'])} "
                         f"<span class=note>({html.escape(run.out.name)})</span></h3>")
            parts.append(_table(s["trajectory"], ["lesion", "scan", "when", "status", "volume_ml",
                                                  "longest_axial_diameter_mm", "response", "review_reasons"]))
    doc = (f"<!DOCTYPE html><html><head><meta charset='utf-8'>{REPORT_TITLE}"
           f"<style>{_STYLE}</style></head><body>{''.join(parts)}</body></html>")
    html_path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(html_path, doc)  # Ctrl-C: the earlier report, no half page, no leftover
    analyses_path = html_path.with_name(html_path.stem + "_analyses.json")
    write_text_atomic(analyses_path, json.dumps(_clean(analyses), indent=2, default=str))
    written: dict[Path, list[str]] = defaultdict(list)  # one marker update per folder, not per file
    for path in [p for run in runs for p in run.written] + [html_path, analyses_path]:
        written[path.parent.resolve()].append(path.name)
    for folder, names in written.items():
        record_written(folder, names)
    return html_path


def _check_replaceable(path: Path) -> None:
    """The report may replace an earlier LinGuinE report (and its analyses file), never another file."""
    check_replaceable(path, REPORT_TITLE.encode(), "a LinGuinE report", "--html")
    check_replaceable(path.with_name(path.stem + "_analyses.json"), _ANALYSES_SIGNATURES,
                      "LinGuinE's analyses file", "--html")


def _review_section(runs: list[_Run]) -> list[str]:
    """Results flagged for review (every study), and how well the flag matches the truth."""
    flagged, pairs = [], []
    for run in runs:
        truth = {(r.get("patient_id"), r.get("lesion"), r.get("scan")): r for r in run.rows}
        for s in run.study_states():
            for t in s["trajectory"]:
                review = str(t.get("review", "")).lower() == "true"
                if review:
                    flagged.append({"patient_id": s["patient_id"], **t})
                ev = truth.get((s["patient_id"], t.get("lesion"), t.get("scan")))
                bad = is_bad(ev.get("truth_volume_ml"), ev.get("pred_volume_ml"), ev.get("dice")) if ev else None
                if bad is not None:
                    pairs.append((bad, review))
    parts = ["<h2>Needs review</h2>"]
    if not flagged:
        parts.append('<p class="note">No result was flagged for review.</p>')
    else:
        parts.append(f"<p>{len(flagged)} (lesion, scan) result(s) flagged; each reason is explained "
                     "in the README (quality flag) and in the trajectory's review_details column.</p>")
        parts.append(_table(flagged, ["patient_id", "lesion", "scan", "status", "volume_ml", "review_reasons",
                                      "review_details"]))
    if pairs:
        sc = flag_scores(pairs)
        parts.append(f"<p>Against the truth ({sc['n']} results, {sc['bad']} bad: Dice &lt; 0.5, volume off by "
                     f"more than 2x, missed or spurious): {sc['bad_flagged']} of the bad flagged (recall "
                     f"{_fmt(sc['recall'])}), {sc['good_flagged']} of the good flagged (rate "
                     f"{_fmt(sc['good_flagged_rate'])}), precision {_fmt(sc['precision'])}.</p>")
    return parts


def _direction_sets(runs: list[_Run], by_config: dict[str, list[dict]]):
    """Runs that differ by source choice (earliest/middle/latest), else any 3+ configurations."""
    by_source = {run.source: run.rows for run in runs if run.source in DIRECTIONS and run.rows}
    if len(by_source) >= 3:
        return ("Direction agnosticism (same lesions, different source scan)",
                {s: by_source[s] for s in DIRECTIONS if s in by_source})
    if len(by_config) >= 3:
        return ("Same lesions under several configurations", dict(sorted(by_config.items())))
    return None


def _clean(o):
    """JSON-safe copy: NaN and infinities become null (strict JSON has no NaN)."""
    if isinstance(o, dict):
        return {str(k): _clean(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_clean(v) for v in o]
    if isinstance(o, float) and not math.isfinite(o):
        return None
    return o
