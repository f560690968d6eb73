"""Score tracking results against ground-truth labelmaps: one row per (lesion, scan).

Truth: each scan's ``label`` labelmap (``Scan.truth_path``); the lesion's ``truth_label`` says
which value is that lesion. Without a ``truth_label`` it is read from the truth of the prompt scan
(the most common non-zero value under the prompt mask or at the prompt points). A scan without a
labelmap, or a lesion whose value cannot be found, gives rows with outcome ``no_truth`` (kept in
the table, left out of the summaries). Every (lesion, scan) pair gives a row, including prompts
that left the image (an empty prediction: a miss when the lesion is there).

``weeks_from_source``: target minus source scan time, from dates when both scans are dated,
else from time-unit labels (``week_12``, ``day_30``); empty when unknown. ``point_in_truth``: did
the propagated point land inside the truth (the reference's "valid click")?
"""

from __future__ import annotations

import csv
import logging
import math
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..errors import InputError
from ..geometry import physical_to_continuous_index_zyx, same_grid, voxel_volume_ml
from ..study.images import read_image
from ..study.model import Lesion, Scan, Study
from ..textio import read_json
from ..voxels import voxel_copy, voxels
from .metrics import HIT_MIN_DICE, pair_metrics

log = logging.getLogger(__name__)

EVAL_COLUMNS = (
    "dataset", "configuration", "patient_id", "lesion", "truth_label", "scan", "when",
    "source_scan", "is_source", "weeks_from_source", "status", "truth_present", "pred_present",
    "dice", "centre_distance_mm", "hd95_mm", "assd_mm", "nsd", "outcome", "success",
    "truth_volume_ml", "pred_volume_ml", "point_in_truth",
)
_FLOAT = ("weeks_from_source", "dice", "centre_distance_mm", "hd95_mm", "assd_mm", "nsd",
          "truth_volume_ml", "pred_volume_ml")
_BOOL = ("is_source", "truth_present", "pred_present", "success", "point_in_truth")

# (lesion index in study order, lesion, scan) -> predicted (z, y, x) bool mask on the scan grid
PredictionFn = Callable[[int, Lesion, Scan], np.ndarray]


def weeks_between(source: Scan, target: Scan) -> float:
    """Signed weeks from the source scan to the target (NaN when the dates/labels don't say)."""
    from ..study.timepoints import label_days

    if source.date is not None and target.date is not None:
        return (target.date - source.date).days / 7.0
    a, b = label_days(source.timepoint), label_days(target.timepoint)
    if a is None or b is None:
        return math.nan
    return (b - a) / 7.0


def read_truth(scan: Scan, reference: sitk.Image) -> np.ndarray | None:
    """The scan's truth labelmap as a (z, y, x) array on the reference grid (None if absent)."""
    if scan.truth_path is None:
        return None
    path = Path(scan.truth_path)
    if not path.exists():
        raise InputError(f"scan '{scan.id}': truth label '{path}' not found")
    truth = read_image(path)
    if not same_grid(truth, reference):
        log.warning("truth of scan %s is on another grid: resampled (nearest neighbour)", scan.id)
        truth = sitk.Resample(truth, reference, sitk.Transform(), sitk.sitkNearestNeighbor, 0)
    return voxel_copy(truth)


def _infer_truth_label(lesion: Lesion, truth: np.ndarray | None, ref: sitk.Image) -> int | None:
    """The truth value under the lesion's prompt on its own scan, when not stated."""
    if truth is None:
        return None
    values: list[int] = []
    if lesion.mask is not None:
        prompt = voxels(lesion.mask) != 0
        if prompt.shape == truth.shape:
            values = [int(v) for v in truth[prompt] if v]
    elif lesion.points_lps is not None:
        zyx = np.round(physical_to_continuous_index_zyx(ref, lesion.points_lps)).astype(int)
        for z, y, x in zyx:
            if all(0 <= i < n for i, n in zip((z, y, x), truth.shape)) and truth[z, y, x]:
                values.append(int(truth[z, y, x]))
    return Counter(values).most_common(1)[0][0] if values else None


def _point_in(mask: np.ndarray, ref: sitk.Image, point_lps) -> bool | None:
    if point_lps is None:
        return None
    z, y, x = np.round(physical_to_continuous_index_zyx(ref, point_lps)[0]).astype(int)
    if not all(0 <= i < n for i, n in zip((z, y, x), mask.shape)):
        return False
    return bool(mask[z, y, x])


def evaluate_study(
    study: Study,
    references: dict[str, sitk.Image],
    prediction: PredictionFn,
    statuses: dict[tuple[str, str], str] | None = None,
    points: dict[tuple[str, str], np.ndarray | None] | None = None,
    dataset: str = "",
    configuration: str = "",
    hit_min_dice: float = HIT_MIN_DICE,
) -> list[dict]:
    """Rows for every (lesion, scan) of one study (see the module docstring for conventions)."""
    statuses = statuses or {}
    points = points or {}
    truths = {s.id: read_truth(s, references[s.id]) for s in study.scans}
    rows = []
    for k, lesion in enumerate(study.lesions):
        source = study.scan(lesion.scan_id)
        label = lesion.truth_label
        if label is None:
            label = _infer_truth_label(lesion, truths[source.id], references[source.id])
        for scan in study.scans:
            ref = references[scan.id]
            spacing_zyx = tuple(float(v) for v in ref.GetSpacing()[::-1])
            pred = np.asarray(prediction(k, lesion, scan), dtype=bool)
            row = {
                "dataset": dataset, "configuration": configuration,
                "patient_id": study.patient_id, "lesion": lesion.id,
                "truth_label": label if label is not None else "",
                "scan": scan.id, "when": scan.when, "source_scan": source.id,
                "is_source": scan.id == source.id,
                "weeks_from_source": weeks_between(source, scan),
                "status": statuses.get((lesion.id, scan.id), ""),
                "pred_volume_ml": float(pred.sum()) * voxel_volume_ml(ref),
            }
            truth = truths[scan.id]
            if truth is None or label is None:
                row.update(outcome="no_truth", pred_present=bool(pred.any()))
                rows.append(_complete(row))
                continue
            t = truth == label
            m = pair_metrics(pred, t, spacing_zyx, hit_min_dice=hit_min_dice)
            row.update(m.as_dict())
            row.pop("truth_voxels")
            row.pop("pred_voxels")
            row["truth_volume_ml"] = m.truth_voxels * voxel_volume_ml(ref)
            inside = _point_in(t, ref, points.get((lesion.id, scan.id)))
            row["point_in_truth"] = "" if inside is None else inside
            rows.append(_complete(row))
    return rows


def _complete(row: dict) -> dict:
    out = {c: row.get(c, "") for c in EVAL_COLUMNS}
    for c in _FLOAT:
        if out[c] == "" or out[c] is None:
            out[c] = math.nan
    return out


def evaluate_result(result, dataset: str = "", configuration: str = "") -> list[dict]:
    """Rows for an in-memory ``TrackingResult`` (Slicer, tests)."""
    study = result.study
    return evaluate_study(
        study, result.references,
        lambda k, lesion, scan: result.get(lesion.id, scan.id).mask.to_full(),
        statuses={key: r.status for key, r in result.results.items()},
        points={key: r.propagated_point_lps for key, r in result.results.items()},
        dataset=dataset, configuration=configuration,
    )


def configuration_name(config: dict, source: str = "manifest") -> str:
    """A short readable name of a tracking configuration, e.g. ``classical+classical/direct``."""
    name = f"{config.get('registration')}+{config.get('segmentation')}/{config.get('mode')}"
    if config.get("boost"):
        name += "+boost"
    if source and source != "manifest":
        name += f"@{source}"
    return name


class EditedOutput(InputError):
    """A file LinGuinE wrote that was edited by hand and can no longer be read as written: an error
    of the whole command (``evaluate``, ``report``), never a study quietly left out."""


def read_trajectory(path: Path) -> list[dict]:
    """The rows of a ``trajectory.csv`` LinGuinE wrote ([] when there is none); a hand-edited line
    is an ``EditedOutput`` naming the file and line."""
    path = Path(path)
    if not path.is_file():
        return []
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            rows = []
            for row in reader:
                _check_trajectory_row(row, path, reader.line_num)
                rows.append(row)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise EditedOutput(f"{path}: not a readable trajectory table ({exc}); "
                           "restore the file LinGuinE wrote") from None
    return rows


def _trajectory(study_out: Path) -> tuple[dict, dict]:
    """Status and propagated point per (lesion, scan) from the study's ``trajectory.csv``."""
    rows = read_trajectory(Path(study_out) / "trajectory.csv")
    statuses = {(row["lesion"], row["scan"]): row.get("status", "") for row in rows}
    points = {(row["lesion"], row["scan"]): _row_point(row) for row in rows}
    return statuses, points


def _check_trajectory_row(row: dict, path: Path, line: int) -> None:
    """A hand-edited line (too few or too many fields, no lesion or scan) is an error naming it."""
    if None in row or any(v is None for v in row.values()) or not row.get("lesion") or not row.get("scan"):
        raise EditedOutput(f"{path}: line {line} is not a trajectory row (edited by hand?); "
                           "restore the file LinGuinE wrote or remove that line")


def _row_point(row: dict) -> np.ndarray | None:
    try:
        ras = [float(row[f"point_{a}"]) for a in "ras"]
    except (KeyError, ValueError):
        return None
    return np.array([[-ras[0], -ras[1], ras[2]]])


def evaluate_study_output(study: Study, study_out: Path, dataset: str = "",
                          configuration: str = "", hit_min_dice: float = HIT_MIN_DICE) -> list[dict]:
    """Rows for one study from its written outputs (``labels/<scan>.nii.gz``, ``run.json``,
    ``trajectory.csv``)."""
    study_out = Path(study_out)
    run = read_json(study_out / "run.json", "run record")
    files = {s.get("id"): s.get("file") for s in run.get("scans", []) if isinstance(s, dict)}
    values = {les["id"]: int(les["label"]) for les in run.get("lesions", [])}
    labels: dict[str, np.ndarray] = {}
    references: dict[str, sitk.Image] = {}
    for scan in study.scans:
        path = study_out / "labels" / f"{files.get(scan.id) or scan.id}.nii.gz"
        if not path.is_file():
            raise InputError(f"{study_out}: predicted labels for scan '{scan.id}' missing ({path})")
        img = read_image(path)
        references[scan.id] = img
        labels[scan.id] = voxel_copy(img)
    for k, lesion in enumerate(study.lesions, start=1):
        values.setdefault(lesion.id, k)
    statuses, points = _trajectory(study_out)
    if not configuration:
        configuration = configuration_name(run.get("config", {}))
    return evaluate_study(
        study, references, lambda k, lesion, scan: labels[scan.id] == values[lesion.id],
        statuses, points, dataset, configuration, hit_min_dice,
    )


def table_signature(columns: tuple[str, ...]) -> bytes:
    """The header line ``write_table`` writes: how an earlier LinGuinE table is recognised."""
    return ",".join(columns).encode("utf-8")


def write_table(rows: list[dict], path: Path, columns: tuple[str, ...] | None = None) -> None:
    """CSV with a fixed column order, written atomically; NaN as empty, floats to 6 figures."""
    path = Path(path)
    columns = columns or (EVAL_COLUMNS if rows and "dice" in rows[0] else tuple(rows[0]) if rows
                          else EVAL_COLUMNS)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with tmp.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(columns), extrasaction="ignore")
            writer.writeheader()
            for row in rows:
                writer.writerow({c: _cell(row.get(c, "")) for c in columns})
        tmp.replace(path)
    except BaseException:  # Ctrl-C, disk full: the earlier table stays, no half-written leftover
        tmp.unlink(missing_ok=True)
        raise


def _cell(v):
    if isinstance(v, float):
        return "" if math.isnan(v) else f"{v:.6g}"
    if isinstance(v, (bool, np.bool_)):
        return "true" if v else "false"
    return v


def read_table(path: Path) -> list[dict]:
    """Rows of an evaluation CSV with numbers as floats (NaN when empty) and booleans as bool."""
    with Path(path).open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    for row in rows:
        for c in _FLOAT:
            if c in row:
                row[c] = float(row[c]) if row[c] not in ("", None) else math.nan
        for c in _BOOL:
            if c in row and row[c] != "":
                row[c] = row[c].lower() == "true"
    return rows


def batch_studies(info: dict, info_path: Path) -> dict[str, dict]:
    """``batch.json``'s studies, each with its folder: a hand-edited entry is an ``EditedOutput`` naming it."""
    studies = info.get("studies", {})
    if not isinstance(studies, dict):
        raise EditedOutput(f"{info_path}: 'studies' is not an object (edited by hand?); "
                           "restore the file LinGuinE wrote")
    for pid, entry in studies.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("folder"), str) or not entry["folder"]:
            raise EditedOutput(f"{info_path}: studies['{pid}'] has no 'folder' (edited by hand?); "
                               "restore the file LinGuinE wrote")
    return studies


def evaluate_batch(out_root: Path, dataset: Path | None = None, dataset_name: str | None = None,
                   configuration: str | None = None, hit_min_dice: float = HIT_MIN_DICE
                   ) -> tuple[list[dict], list[str]]:
    """Rows for every finished study of a ``linguine batch`` output folder.

    The studies and their manifests come from ``OUT/batch.json`` (or from ``dataset`` when
    given). Returns the rows and the patient ids that have no finished output (not evaluated).
    """
    from ..batch.dataset import load_dataset
    from ..study.manifest import load_manifest

    out_root = Path(out_root)
    info_path = out_root / "batch.json"
    info = read_json(info_path, "batch record") if info_path.is_file() else {}
    if not isinstance(info, dict):
        raise InputError(f"{info_path}: not a batch record (expected a JSON object)")
    if dataset is not None:
        jobs = load_dataset(Path(dataset), out_root / "_manifests")
        studies = {j.patient_id: {"folder": j.folder_name, "manifest": j.manifest} for j in jobs}
    elif info:
        studies = batch_studies(info, info_path)
    else:
        raise InputError(f"{out_root}: no batch.json (not a `linguine batch` output); "
                         "pass --dataset")
    name = dataset_name or Path(str(info.get("dataset") or dataset or out_root)).stem
    if not configuration:
        configuration = configuration_name(info["config"], info.get("source", "manifest")) \
            if info.get("config") else ""
    rows: list[dict] = []
    missing: list[str] = []
    for pid in sorted(studies):
        entry = studies[pid]
        study_out = out_root / entry["folder"]  # checked by batch_studies
        if not (study_out / "run.json").is_file() or not entry.get("manifest"):
            missing.append(pid)
            continue
        try:
            study = load_manifest(Path(entry["manifest"]))
            rows.extend(evaluate_study_output(study, study_out, name, configuration, hit_min_dice))
        except EditedOutput:  # LinGuinE's own table edited by hand: the command fails, naming the line
            raise
        except InputError as exc:  # one unreadable study (input) must not hide the others
            log.warning("%s not evaluated: %s", pid, exc)
            missing.append(pid)
    return rows, missing
