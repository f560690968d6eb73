"""`linguine batch DATASET --out OUT`: track every study of a dataset, resumably."""

from __future__ import annotations

import argparse
import importlib
import logging
import shutil
from pathlib import Path

from ..batch.dataset import SOURCE_CHOICES, StudyJob, load_dataset, reprompt_manifest
from ..batch.runner import (
    batch_inputs,
    check_batch_info,
    connect_scheduler,
    review_summary,
    run_batch,
    write_batch_info,
)
from ..errors import InputError
from ..outputs.safety import check_out, claim_out, first_missing
from ..registry import check_config_options
from ..study.preflight import BASE_BYTES
from .options import add_tracking_options, config_from_args, out_path

log = logging.getLogger(__name__)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "batch", help="track every study of a dataset (resumable, parallel, Dask)",
        description="Track every study of DATASET into OUT/<patient_id>/. DATASET is a folder of "
                    "study manifests (STUDY.json or *.json), one manifest, or a JSON list of "
                    "records in the reference LinGuinE format. Finished studies (OUT/<patient>/"
                    "run.json) are skipped, so rerunning after a crash or Ctrl-C resumes; failed "
                    "studies are listed with their reason in OUT/failures.csv.")
    p.add_argument("dataset", type=Path, help="folder of manifests, a manifest, or a records JSON list")
    p.add_argument("--out", type=out_path, required=True,
                   help="output folder (one sub-folder per study): new, empty, or a previous batch output")
    p.add_argument("--workers", type=int, default=1,
                   help="studies run in parallel in local processes (default 1)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="Dask distributed scheduler (e.g. tcp://host:8786): one study per task; "
                        "workers must see DATASET and OUT at the same paths")
    p.add_argument("--source", choices=SOURCE_CHOICES, default="manifest",
                   help="prompt scan: as in the manifests (default), or re-prompt every lesion "
                        "from its truth mask on the earliest/middle/latest scan (evaluation)")
    p.add_argument("--plugin", action="append", default=[], metavar="MODULE",
                   help="import MODULE first (here and in every worker) to register extra backends")
    p.add_argument("--dicom", action="store_true",
                   help="also write DICOM SEG + TID 1500 measurement report per scan read from DICOM "
                        "(OUT/<patient>/dicom/)")
    add_tracking_options(p)
    p.set_defaults(func=run)


def _import_plugins(names: list[str]) -> None:
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise InputError(f"--plugin: cannot import '{name}' ({exc})") from exc


def _reprompt(jobs: list[StudyJob], choice: str, out: Path) -> list[StudyJob]:
    """Replace each study's prompts by truth masks on the chosen scan (failures kept per study)."""
    new = []
    for job in jobs:
        if job.error or job.manifest is None:
            new.append(job)
            continue
        try:
            manifest = reprompt_manifest(job.manifest, choice, out / "_manifests" / job.folder_name)
            new.append(StudyJob(job.patient_id, manifest, folder=job.folder))
        except InputError as exc:
            new.append(StudyJob(job.patient_id, job.manifest, str(exc), folder=job.folder))
    return new


def _prepare(args: argparse.Namespace, config) -> tuple[Path, list[StudyJob], object]:
    """Every check before any study runs; a refusal leaves no trace (an OUT it created is removed)."""
    if not args.dataset.exists():
        raise InputError(f"dataset '{args.dataset}' does not exist")
    out = check_out(args.out, [args.dataset], "batch", need_bytes=BASE_BYTES)
    check_batch_info(out, config, args.source)
    client = connect_scheduler(args.scheduler) if args.scheduler else None
    created = first_missing(out)
    try:
        claim_out(out, "batch")
        jobs = load_dataset(args.dataset, out / "_manifests")
        check_out(out, batch_inputs(jobs, out), "batch")
        if args.source != "manifest":
            jobs = _reprompt(jobs, args.source, out)
        write_batch_info(out, str(args.dataset.resolve()), config, jobs, args.source)
    except BaseException:
        if created is not None:
            shutil.rmtree(created, ignore_errors=True)
        if client is not None:
            client.close()
        raise
    return out, jobs, client


def run(args: argparse.Namespace) -> int:
    if args.workers < 1:
        raise InputError(f"--workers must be 1 or more, got {args.workers}")
    if args.scheduler and args.workers != 1:
        raise InputError("--workers and --scheduler exclude each other (Dask sizes its own workers)")
    _import_plugins(args.plugin)
    config = config_from_args(args)
    check_config_options(config)
    if args.dicom:
        from ..outputs.dicom_seg import require_dicom_packages

        require_dicom_packages()
    out, jobs, client = _prepare(args, config)
    try:
        report = run_batch(jobs, out, config, workers=args.workers, scheduler=client,
                           show_progress=not args.quiet, plugins=tuple(args.plugin), dicom=args.dicom)
    finally:
        if client is not None:
            client.close()
    done, skipped, failed = report.count("done"), report.count("skipped"), report.count("failed")
    if not args.quiet:
        print(f"{len(jobs)} studies: {done} tracked, {skipped} already finished, {failed} failed; "
              f"outputs in {out}")
        for o in report.failed:
            print(f"  failed {o.patient_id}: {o.error}: {o.message}")
        if failed:
            print(f"  (listed in {out / 'failures.csv'}; rerun the same command to retry them)")
        review = review_summary(out, jobs)
        if review["flagged"]:
            print(f"  {review['flagged']} (lesion, scan) result(s) flagged for review in {review['studies']} "
                  f"study(ies); `linguine report {out}` lists them")
        if review["empty_clicks"]:
            print(f"  {review['empty_clicks']} lesion(s) whose click gave nothing: tracked from the click, "
                  "no baseline (empty_prompt)")
    return 1 if failed else 0
