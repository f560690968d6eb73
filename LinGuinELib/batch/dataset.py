"""What a dataset is for batch runs: a list of studies, each a manifest file and a patient id.

Accepted inputs:

- a folder: every ``*.json`` below it that is a study manifest (an object whose ``scans`` entries
  have ``id`` and ``image``) or a reference-format record list (objects with ``patient_id`` and
  ``file_id``); other JSON files (notes, truth descriptions) are ignored;
- one study manifest file;
- one reference-format record list (see ``reference_format``), converted into manifests under
  ``work_dir``.

``reprompt_manifest`` re-states a study with its lesions prompted on another scan (earliest,
middle or latest), using the truth labelmaps: the direction-agnosticism experiment.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..errors import InputError
from ..outputs.names import safe_name, unique_names
from ..textio import read_json, write_text_atomic
from ..voxels import voxels
from .reference_format import records_to_manifests

log = logging.getLogger(__name__)

SOURCE_CHOICES = ("manifest", "earliest", "middle", "latest")


@dataclass
class StudyJob:
    """One unit of batch work. ``error`` is set when the study could not even be prepared."""

    patient_id: str
    manifest: Path | None
    error: str | None = None
    folder: str | None = None  # set by load_dataset: unique within the dataset, case-insensitively

    @property
    def folder_name(self) -> str:
        """The study's output folder name under the batch output folder (``names.safe_name``)."""
        return self.folder or safe_name(self.patient_id)


def _read_json(path: Path):
    return read_json(path, "JSON file")


def _manifest_job(path: Path, data: dict) -> StudyJob:
    pid = str(data.get("patient_id") or path.parent.name)
    return StudyJob(pid, path.resolve())


def json_kind(data) -> str | None:
    """'manifest', 'records' or None (another JSON file, e.g. a generator's truth notes)."""
    if isinstance(data, dict) and isinstance(data.get("scans"), list) and data["scans"] and all(
            isinstance(s, dict) and "id" in s and "image" in s for s in data["scans"]):
        return "manifest"
    if isinstance(data, list) and data and all(
            isinstance(r, dict) and "patient_id" in r and "file_id" in r for r in data):
        return "records"
    return None


def _jobs_from_file(path: Path, work_dir: Path) -> list[StudyJob]:
    data = _read_json(path)
    kind = json_kind(data)
    if kind == "records" or (isinstance(data, list) and path.is_file()):
        manifests, failures = records_to_manifests(path, work_dir)
        jobs = [_manifest_job(m, _read_json(m)) for m in manifests]
        jobs += [StudyJob(pid, None, reason) for pid, reason in failures.items()]
        return jobs
    if kind == "manifest" or (isinstance(data, dict) and "scans" in data):
        return [_manifest_job(path, data)]
    raise InputError(f"{path}: neither a study manifest (with 'scans') nor a list of records")


def load_dataset(dataset: Path, work_dir: Path) -> list[StudyJob]:
    """The studies of a dataset, sorted by patient id; record lists are converted in work_dir."""
    dataset = Path(dataset)
    if not dataset.exists():
        raise InputError(f"dataset '{dataset}' does not exist")
    jobs: list[StudyJob] = []
    if dataset.is_dir():
        work = Path(work_dir).resolve()
        for path in sorted(dataset.rglob("*.json")):
            parts = path.relative_to(dataset).parts
            if any(p.startswith(".") for p in parts) or work in path.resolve().parents:
                continue
            is_study = path.name.lower() == "study.json"
            try:
                data = _read_json(path)
            except InputError as exc:
                if is_study:  # a broken manifest fails its own study, not the dataset
                    jobs.append(StudyJob(path.parent.name, path.resolve(), str(exc)))
                else:
                    log.warning("%s", exc)
                continue
            kind = json_kind(data)
            if kind == "manifest":
                jobs.append(_manifest_job(path, data))
            elif kind == "records":
                jobs.extend(_jobs_from_file(path, work_dir / safe_name(path.stem)))
            elif is_study:
                jobs.append(StudyJob(path.parent.name, path.resolve(),
                                     f"{path}: not a study manifest (needs 'scans' with 'id' "
                                     "and 'image')"))
    else:
        jobs = _jobs_from_file(dataset, work_dir)
    if not jobs:
        raise InputError(f"dataset '{dataset}' holds no study manifest or record list")
    seen: dict[str, StudyJob] = {}
    for job in jobs:
        if job.patient_id in seen:
            raise InputError(
                f"dataset '{dataset}': patient id '{job.patient_id}' appears in two studies "
                f"({seen[job.patient_id].manifest} and {job.manifest})"
            )
        seen[job.patient_id] = job
    jobs = sorted(jobs, key=lambda j: j.patient_id)
    folders = unique_names([j.patient_id for j in jobs])
    for job in jobs:
        job.folder = folders[job.patient_id]
    return jobs


def _pick(n: int, choice: str) -> int:
    return {"earliest": 0, "middle": (n - 1) // 2, "latest": n - 1}[choice]


def reprompt_manifest(manifest: Path, choice: str, work_dir: Path) -> Path:
    """A copy of the manifest whose lesions are prompted on the earliest/middle/latest scan.

    Each lesion's prompt becomes its truth mask (its ``truth_label`` in that scan's ``label``),
    written as a mask file in work_dir. A lesion absent from that scan's truth is left out (a
    prompt needs a lesion) and logged. Raises InputError when no lesion can be prompted.
    """
    from ..study.images import read_image
    from ..study.manifest import load_manifest

    if choice not in SOURCE_CHOICES[1:]:
        raise InputError(f"source choice '{choice}' is not one of {', '.join(SOURCE_CHOICES)}")
    study = load_manifest(Path(manifest))
    scan = study.scans[_pick(len(study.scans), choice)]
    if scan.truth_path is None:
        raise InputError(f"{manifest}: scan '{scan.id}' has no 'label' to prompt from")
    truth = read_image(scan.truth_path)
    arr = voxels(truth)
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    lesions = []
    names = unique_names([les.id for les in study.lesions])
    for lesion in study.lesions:
        if lesion.truth_label is None or not np.any(arr == lesion.truth_label):
            log.info("%s: lesion %s absent from %s, not prompted", study.patient_id, lesion.id,
                     scan.id)
            continue
        mask_path = work_dir / f"prompt_{names[lesion.id]}.nii.gz"
        sitk.WriteImage(sitk.Cast(truth == int(lesion.truth_label), sitk.sitkUInt8),
                        str(mask_path), True)
        lesions.append({"id": lesion.id, "scan": scan.id, "mask": str(mask_path.resolve()),
                        "truth_label": int(lesion.truth_label)})
    if not lesions:
        raise InputError(f"{manifest}: no lesion with a truth_label is present on scan '{scan.id}'")
    scans = []
    for s in study.scans:
        entry: dict = {"id": s.id, "image": str(Path(s.path).resolve()) if s.path else None}
        if s.date is not None:
            entry["date"] = s.date.isoformat()
        if s.timepoint:
            entry["timepoint"] = s.timepoint
        if s.truth_path is not None:
            entry["label"] = str(Path(s.truth_path).resolve())
        if s.series_uid:
            entry["series_uid"] = s.series_uid
        scans.append(entry)
    out = work_dir / "STUDY.json"
    write_text_atomic(out, json.dumps({"patient_id": study.patient_id, "scans": scans,
                                       "lesions": lesions}, indent=2, ensure_ascii=False))
    return out
