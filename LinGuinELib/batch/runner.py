"""Run tracking on every study of a dataset: serially, in local processes, or on a Dask cluster.

Resumable by construction: ``pipeline.run_study`` writes ``OUT/<patient>/`` atomically with
``run.json`` last, so a study folder with ``run.json`` is finished and is skipped on the next
run, and a crash or Ctrl-C mid-study leaves nothing that counts as done (its hidden
``.<patient>.partial-*`` folder is removed by the retry, see ``outputs.safety``). Nothing else is
ever deleted: a study folder LinGuinE did not write fails that study with a clear reason.
Local worker processes exit when the batch process dies (they watch their parent).

Failures never stop the other studies: each is recorded in ``OUT/failures.csv`` (patient id,
manifest, error type, message), rewritten atomically after every study, and dropped from it
once the study succeeds on a later run. ``OUT/batch.json`` records the dataset, configuration
and the manifest of each study (``linguine evaluate`` reads it); a second run into the same
folder must use the same configuration.
"""

from __future__ import annotations

import csv
import importlib
import io
import logging
import os
import socket
import threading
import time
import traceback
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..config import TrackingConfig
from ..errors import EnvironmentProblem, InputError
from ..evaluation.evaluate import EditedOutput, read_trajectory
from ..outputs.safety import check_out, claim_out
from ..quality.reasons import Reason
from ..textio import read_json, write_json_atomic, write_text_atomic
from .dataset import StudyJob

log = logging.getLogger(__name__)

DONE_MARKER = "run.json"
PARENT_POLL_S = 1.0
SCHEDULER_TIMEOUT_S = 5.0
FAILURE_COLUMNS = ("patient_id", "manifest", "error", "message")


@dataclass
class StudyOutcome:
    patient_id: str
    status: str  # "done", "skipped" (already finished), "failed"
    seconds: float = 0.0
    error: str = ""
    message: str = ""
    manifest: str = ""


@dataclass
class BatchReport:
    outcomes: list[StudyOutcome] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(o.status == status for o in self.outcomes)

    @property
    def failed(self) -> list[StudyOutcome]:
        return [o for o in self.outcomes if o.status == "failed"]


def batch_inputs(jobs: list[StudyJob], out_root: Path) -> list[Path]:
    """The manifests a batch reads (those it converted itself under OUT/_manifests excepted)."""
    work = Path(out_root).resolve() / "_manifests"
    return [Path(j.manifest) for j in jobs
            if j.manifest is not None and work not in Path(j.manifest).resolve().parents]


def study_done(out_root: Path, job: StudyJob) -> bool:
    """Finished means the completion marker exists (written last by the output writer)."""
    return (Path(out_root) / job.folder_name / DONE_MARKER).is_file()


def run_one(job: StudyJob, out_root: str, config: dict[str, Any],
            plugins: tuple[str, ...] = (), dicom: bool = False) -> StudyOutcome:
    """Track one study into out_root/<patient>; never raises (the outcome carries the error).

    A top-level function with plain arguments so that process pools and Dask can ship it;
    ``plugins`` are modules imported first (they register extra backends in the worker);
    ``dicom`` also writes DICOM SEG + measurement reports.
    """
    start = time.perf_counter()
    manifest = str(job.manifest or "")
    if job.error:
        return StudyOutcome(job.patient_id, "failed", 0.0, "InputError", job.error, manifest)
    out_dir = Path(out_root) / job.folder_name
    if (out_dir / DONE_MARKER).is_file():
        return StudyOutcome(job.patient_id, "skipped", 0.0, manifest=manifest)
    try:
        from ..pipeline import run_study

        for name in plugins:
            importlib.import_module(name)
        run_study(Path(job.manifest), out_dir, TrackingConfig(**config), dicom=dicom)
    except Exception as exc:  # one study's failure must not stop the batch
        log.debug("study %s failed:\n%s", job.patient_id, traceback.format_exc())
        msg = " ".join(str(exc).split()) or repr(exc)
        return StudyOutcome(job.patient_id, "failed", time.perf_counter() - start,
                            type(exc).__name__, msg, manifest)
    return StudyOutcome(job.patient_id, "done", time.perf_counter() - start, manifest=manifest)


def read_failures(out_root: Path) -> dict[str, dict[str, str]]:
    path = Path(out_root) / "failures.csv"
    if not path.is_file():
        return {}
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            return {row["patient_id"]: row for row in csv.DictReader(fh) if row.get("patient_id")}
    except (OSError, UnicodeDecodeError, csv.Error, KeyError) as exc:
        raise InputError(f"{path}: not a readable failures table ({exc}); move it away to rerun") from None


def _write_failures(out_root: Path, failures: dict[str, dict[str, str]]) -> None:
    path = Path(out_root) / "failures.csv"
    if not failures and not path.exists():
        return
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(FAILURE_COLUMNS)
    for pid in sorted(failures):
        writer.writerow([str(failures[pid].get(c, "")) for c in FAILURE_COLUMNS])
    write_text_atomic(path, buf.getvalue())


def check_batch_info(out_root: Path, config: TrackingConfig, source: str = "manifest") -> None:
    """Refuse to add to a batch folder made with another configuration (reads only)."""
    path = Path(out_root) / "batch.json"
    if not path.is_file():
        return
    old = read_json(path, "batch record")
    if not isinstance(old, dict):
        raise InputError(f"{path}: not a batch record (expected a JSON object)")
    if old.get("config") != config.to_dict() or old.get("source", "manifest") != source:
        raise InputError(f"{out_root} holds a batch run with another configuration; "
                         "use another --out folder")


def review_summary(out_root: Path, jobs: list[StudyJob]) -> dict[str, int]:
    """Over the studies finished in OUT: ``flagged`` (lesion, scan) results marked for review,
    ``studies`` holding one, ``empty_clicks`` lesions whose click gave nothing (tracked from the
    click, no baseline): what a batch's last lines say, so a run that "succeeded" is not taken as
    vouched for. Read from each study's own trajectory.csv (the same file ``report`` reads)."""
    flagged = studies = empty = 0
    for job in jobs:
        try:
            rows = read_trajectory(Path(out_root) / job.folder_name / "trajectory.csv")
        except (OSError, EditedOutput):  # edited by hand since: `report` names it
            continue
        marked = [r for r in rows if str(r.get("review", "")).lower() == "true"]
        flagged += len(marked)
        studies += bool(marked)
        empty += sum(Reason.EMPTY_PROMPT.value in (r.get("review_reasons") or "").split(";") for r in marked)
    return {"flagged": flagged, "studies": studies, "empty_clicks": empty}


def write_batch_info(out_root: Path, dataset: str, config: TrackingConfig, jobs: list[StudyJob],
                     source: str = "manifest") -> None:
    """Record what this output folder is a run of; refuse a different configuration."""
    check_batch_info(out_root, config, source)
    path = Path(out_root) / "batch.json"
    info = {"dataset": dataset, "config": config.to_dict(), "source": source,
            "studies": {j.patient_id: {"folder": j.folder_name,
                                       "manifest": str(j.manifest) if j.manifest else None}
                        for j in jobs}}
    if path.is_file():
        old_studies = read_json(path, "batch record").get("studies", {})
        old_studies.update(info["studies"])
        info["studies"] = old_studies
    write_json_atomic(path, info)


def check_scheduler(address: str, timeout: float = SCHEDULER_TIMEOUT_S) -> None:
    """Refuse a malformed scheduler address (InputError) or one not answering (EnvironmentProblem)."""
    if "://" in address and not address.startswith(("tcp://", "tls://")):
        return  # inproc://, ucx://, ws://: Dask's own connection timeout applies
    parts = urlsplit(address if "://" in address else f"tcp://{address}")
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        host, port = None, None
    if parts.scheme not in ("tcp", "tls") or not host or not port:
        raise InputError(f"--scheduler '{address}': expected tcp://HOST:PORT (e.g. tcp://10.0.0.5:8786)")
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as exc:
        raise EnvironmentProblem(f"--scheduler {address}: no answer within {timeout:.0f} s "
                                 f"({exc.strerror or type(exc).__name__})") from None


def connect_scheduler(address: str) -> Any:
    """A Dask client for ``address``, or a one-line error: the check happens before anything is written."""
    check_scheduler(address)
    try:
        from distributed import Client
    except ImportError:
        raise InputError("--scheduler needs dask[distributed]: pip install 'dask[distributed]'") from None
    try:
        return Client(address, timeout=f"{SCHEDULER_TIMEOUT_S:.0f}s")
    except Exception as exc:  # refused, timed out, or something that is not a Dask scheduler answered
        raise EnvironmentProblem(f"--scheduler {address}: no Dask scheduler answers there "
                                 f"({type(exc).__name__}: {' '.join(str(exc).split())[:120]})") from None


def _watch_parent(parent: int) -> None:
    """Exit this worker as soon as the batch process is gone (killed, crashed, SIGKILL)."""
    while os.getppid() == parent:
        time.sleep(PARENT_POLL_S)
    os._exit(1)


def _worker_init(threads: int, parent: int) -> None:
    """Share the cores between local worker processes instead of oversubscribing them."""
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True, name="linguine-parent-watch").start()
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                "ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS"):
        os.environ[var] = str(threads)
    try:
        import SimpleITK as sitk

        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(threads)
    except Exception:  # threads are a hint only
        pass


def _outcomes(jobs: list[StudyJob], out_root: Path, config: dict, workers: int,
              scheduler: Any, plugins: tuple[str, ...], dicom: bool = False) -> Iterable[StudyOutcome]:
    """Yield each study's outcome as it completes, on the chosen executor."""
    if scheduler is not None:
        from distributed import as_completed as dask_completed

        client = connect_scheduler(scheduler) if isinstance(scheduler, str) else scheduler
        with client:
            futures = {client.submit(run_one, j, str(out_root), config, plugins, dicom, pure=False,
                                     key=f"linguine-study-{j.folder_name}-{time.time_ns()}"): j
                       for j in jobs}
            for fut in dask_completed(futures):
                job = futures[fut]
                try:
                    yield fut.result()
                except Exception as exc:  # the worker died (memory, kill): report, go on
                    yield StudyOutcome(job.patient_id, "failed", 0.0, type(exc).__name__,
                                       str(exc), str(job.manifest or ""))
        return
    if workers <= 1:
        for job in jobs:
            yield run_one(job, str(out_root), config, plugins, dicom)
        return
    import multiprocessing as mp

    threads = max(1, (os.cpu_count() or 1) // workers)
    with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"),
                             initializer=_worker_init, initargs=(threads, os.getpid())) as pool:
        futures = {pool.submit(run_one, j, str(out_root), config, plugins, dicom): j for j in jobs}
        try:
            for fut in as_completed(futures):
                job = futures[fut]
                try:
                    yield fut.result()
                except Exception as exc:  # a worker process died
                    yield StudyOutcome(job.patient_id, "failed", 0.0, type(exc).__name__,
                                       str(exc), str(job.manifest or ""))
        except BaseException:  # Ctrl-C, SIGTERM: stop the running studies too, not only the queued
            for fut in futures:
                fut.cancel()
            for proc in list(getattr(pool, "_processes", {}).values()):
                proc.terminate()
            raise


def run_batch(
    jobs: list[StudyJob],
    out_root: Path,
    config: TrackingConfig,
    workers: int = 1,
    scheduler: Any = None,
    show_progress: bool = True,
    on_outcome: Callable[[StudyOutcome], None] | None = None,
    plugins: tuple[str, ...] = (),
    dicom: bool = False,
) -> BatchReport:
    """Track every unfinished study; returns the outcomes (finished ones reported as skipped)."""
    from tqdm import tqdm

    out_root = check_out(out_root, batch_inputs(jobs, out_root), "batch")  # absolute: Dask workers run elsewhere
    claim_out(out_root, "batch")
    report = BatchReport()
    failures = read_failures(out_root)
    todo = []
    for job in jobs:
        if study_done(out_root, job):
            report.outcomes.append(StudyOutcome(job.patient_id, "skipped",
                                                manifest=str(job.manifest or "")))
            failures.pop(job.patient_id, None)
        else:
            todo.append(job)
    log.info("%d studies, %d already finished, %d to run", len(jobs), len(jobs) - len(todo), len(todo))
    cfg = config.to_dict(secrets=True)  # worker processes need the backend keys
    bar = tqdm(total=len(jobs), initial=len(jobs) - len(todo), unit="study",
               disable=not show_progress, desc="linguine batch")
    try:
        for outcome in _outcomes(todo, out_root, cfg, workers, scheduler, plugins, dicom):
            report.outcomes.append(outcome)
            if outcome.status == "failed":
                failures[outcome.patient_id] = {k: v for k, v in asdict(outcome).items()
                                                if k in FAILURE_COLUMNS}
                log.warning("study %s failed: %s: %s", outcome.patient_id, outcome.error,
                            outcome.message)
            else:
                failures.pop(outcome.patient_id, None)
            _write_failures(out_root, failures)
            if on_outcome is not None:
                on_outcome(outcome)
            bar.update(1)
            bar.set_postfix(failed=report.count("failed"))
    finally:
        bar.close()
    return report
