"""Data safety: the one place that decides where LinGuinE may write and what it may replace.

Policy (README, "Data safety"): LinGuinE never deletes or replaces anything it did not create.

- OUT must be a new path, an empty folder, or a folder holding a previous LinGuinE output of
  the same kind, recognised by the marker file ``MARKER`` that LinGuinE writes into every
  output (a single-study output also lists every file it wrote: any other file protects it).
  Never a file, never a folder that holds an input (or is one), never inside an input folder
  (a DICOM series folder).
- A single-study OUT is replaced whole, and only when the new one is complete
  (``staging.staged_output``: an atomic swap; leftovers of killed runs are cleaned).
- File names derived from user text (scan, lesion, patient ids) come only from
  ``names.safe_name`` / ``names.unique_names``; the original ids stay in the files' contents.
- A single-study OUT's marker records each file's size and hash: a file changed since (a
  segmentation corrected in Slicer, a note in the table) protects the OUT like a foreign file.
- A single file is replaced only when it carries LinGuinE's signature (``check_replaceable``).

Entry points: ``check_out`` (refuse a bad OUT before any work), ``staging.staged_output`` (write a
whole-folder output safely), ``claim_out`` (create/mark a folder written into in place, e.g. a
batch OUT), ``check_replaceable`` (may this one file be replaced) with ``record_written``,
``reseal`` (record files rewritten after the swap), ``names.safe_name`` and ``names.unique_names``.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path

from .. import __version__
from ..errors import EnvironmentProblem, InputError

MARKER = ".linguine-output.json"
SIGNATURE_BYTES = 4096  # how much of an existing file is read to recognise it as LinGuinE's


# ----------------------------------------------------------------------------- OUT checks


def resolved(path: Path) -> Path:
    """Absolute path with symlinks of the existing part resolved (what the OS will touch): each
    ``..`` after a symlink goes up from the link's target, as the OS does (``os.path.abspath`` would
    drop the link and its ``..`` as text, naming another folder than the one written to)."""
    return Path(os.path.expanduser(str(path))).resolve()


def _same(a: Path, b: Path) -> bool:
    """Same folder or file: equal paths, or the same inode (case-insensitive filesystems, bind mounts)."""
    if a == b:
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def read_marker(folder: Path) -> dict | None:
    """The marker of a LinGuinE output folder, or None when there is none, it is unreadable, or it
    names no output kind (LinGuinE always writes one: a file of that name without it is not ours)."""
    try:
        data = json.loads((Path(folder) / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("kind"), str) else None


def _existing_ancestor(path: Path) -> Path:
    p = path
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def check_folder_writable(folder: Path, where: str) -> None:
    """Refuse writing into ``folder``, or into the folder that would be created there (its nearest
    existing ancestor), when that is a file or cannot be written (read-only permissions or
    filesystem): an ``InputError``, the user's choice of place, one line naming the folder, raised
    before any work so that nothing is written. ``where``: what the user named (``--out X``)."""
    base = _existing_ancestor(Path(folder))
    if not base.is_dir():
        raise InputError(f"{where}: '{base}' is a file, not a folder")
    if not os.access(base, os.W_OK | os.X_OK):
        raise InputError(f"{where}: the folder '{base}' is not writable (read-only); choose another place")


def check_writable(out: Path, need_bytes: int = 0, replaced_whole: bool = False) -> None:
    """Refuse an OUT that cannot be created/written or lacks free space. ``replaced_whole``: OUT is
    written beside itself and swapped in (``staging``), so its parent must be writable too."""
    for folder in (out, out.parent) if replaced_whole else (out,):  # a file in the way, or read-only
        check_folder_writable(folder, f"--out {out}")
    base = _existing_ancestor(out)
    try:
        st = os.statvfs(base)
    except OSError as exc:
        raise EnvironmentProblem(f"--out {out}: cannot inspect '{base}' ({exc.strerror})") from None
    if st.f_blocks == 0:
        raise EnvironmentProblem(f"--out {out}: '{base}' is not on a real filesystem (e.g. /proc)")
    free = st.f_bavail * st.f_frsize
    if need_bytes and free < need_bytes:
        raise EnvironmentProblem(f"--out {out}: {free / 1e6:.0f} MB free on that filesystem, "
                                 f"about {need_bytes / 1e6:.0f} MB needed")


def check_outside_inputs(out: Path, inputs: Iterable[Path], flag: str = "--out") -> None:
    """Refuse an output path (folder or file) that is or holds an input, or lies inside an input
    folder (a DICOM series, a folder of images, the dataset): the one rule for every command.
    Symlinks and other names of the same folder count as the folder. Writes nothing."""
    target = resolved(out)
    for item in inputs:
        src = resolved(item)
        if any(_same(p, target) for p in (src, *src.parents)):
            raise InputError(f"{flag} {out}: is or holds the input '{item}'; choose another place")
        if src.is_dir() and any(_same(p, src) for p in target.parents):
            raise InputError(f"{flag} {out}: lies inside the input folder '{item}'; LinGuinE writes "
                             "nothing into its inputs: choose a place outside it")


def check_out(out: Path, inputs: Iterable[Path] = (), kind: str = "track", need_bytes: int = 0) -> Path:
    """Refuse an OUT that LinGuinE must not write to; returns it absolute. Writes nothing.

    ``inputs``: every file or folder the run reads (manifest, images, labels, masks). ``kind``:
    what will be written ("track": replaced whole; "batch"/"demo": written into in place).
    """
    if str(out).strip() == "":
        raise InputError("--out is empty")
    target = resolved(out)
    if target.exists() and not target.is_dir():
        raise InputError(f"--out {out}: is an existing file, not a folder (LinGuinE does not replace files)")
    check_outside_inputs(out, inputs)
    if target.is_dir():
        try:
            entries = [p.relative_to(target).as_posix() for p in target.rglob("*")]
        except OSError as exc:
            raise EnvironmentProblem(f"--out {out}: cannot list the folder ({exc.strerror})") from None
        if entries:
            marker = read_marker(target)
            if marker is None:
                raise InputError(f"--out {out}: folder is not empty and is not a LinGuinE output "
                                 f"(no {MARKER}); choose a new or empty folder")
            if marker.get("kind") != kind:
                raise InputError(f"--out {out}: holds a LinGuinE '{marker.get('kind')}' output, "
                                 f"not a '{kind}' one; choose another folder")
            if kind == "track":
                foreign = sorted(set(entries) - set(marker.get("files", [])) - {MARKER})
                if foreign:
                    raise InputError(f"--out {out}: holds files LinGuinE did not write "
                                     f"({', '.join(foreign[:3])}); move them or choose another folder")
                changed = first_changed(target, marker)
                if changed is not None:
                    raise InputError(f"--out {out}: {changed} was changed after LinGuinE wrote it (your edit "
                                     "would be lost); move it out of that folder or choose another --out")
    check_writable(target, need_bytes, replaced_whole=kind == "track")
    return target


# ----------------------------------------------------------------------------- what was written


def file_digest(path: Path) -> str:
    """``<size>:<blake2b-128 of the bytes>``: recorded for every file a track OUT holds, so that a
    file edited afterwards (a corrected segmentation, a note in the table) is never replaced."""
    h = hashlib.blake2b(digest_size=16)
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
            size += len(chunk)
    return f"{size}:{h.hexdigest()}"


def first_changed(folder: Path, marker: dict) -> str | None:
    """The first file whose bytes differ from what the marker recorded (None: all as written).

    Markers without ``digests`` (LinGuinE before they were recorded) cannot tell: None. A listed
    file that was removed is not a change to protect. The size is compared first (no read).
    """
    digests = marker.get("digests")
    if not isinstance(digests, dict):
        return None
    for name in sorted(digests):
        path = Path(folder) / name
        if not path.is_file():
            continue
        recorded = str(digests[name])
        if not recorded.startswith(f"{path.stat().st_size}:") or file_digest(path) != recorded:
            return name
    return None


def reseal(folder: Path) -> None:
    """Record a track OUT's files as they are now, after a writer outside ``staged_output`` (Slicer's
    storage nodes) replaced some of them; only files the marker already lists are recorded."""
    marker = read_marker(folder) or {}
    write_marker(Path(folder), str(marker.get("kind", "track")), marker.get("files", []))


def check_replaceable(path: Path, signature: bytes | tuple[bytes, ...], what: str, flag: str = "") -> None:
    """Refuse to replace an existing file unless its first bytes hold LinGuinE's ``signature`` (an
    HTML title, a table's header, a JSON key's value; a tuple: any of them, e.g. an older release's):
    files the user made or chose are never overwritten. ``what`` names what LinGuinE writes there;
    ``flag`` the option that named the path, if any."""
    path = Path(path)
    where = f"{flag} {path}".strip()
    if path.is_dir():
        raise InputError(f"{where}: is a folder")
    if path.exists() or path.is_symlink():
        head = b""
        if path.is_file():  # never open a pipe or device: that would block
            try:
                with open(path, "rb") as fh:
                    head = fh.read(SIGNATURE_BYTES)
            except OSError:
                pass
        signatures = (signature,) if isinstance(signature, bytes) else signature
        if not any(sig in head for sig in signatures):
            raise InputError(f"{where}: exists and is not {what}; move it away or choose another file")
        recorded = ((read_marker(path.parent) or {}).get("digests") or {}).get(path.name)
        if recorded and file_digest(path) != recorded:
            raise InputError(f"{where}: was changed after LinGuinE wrote it (your edit would be lost); "
                             "move it away or choose another file")


def record_written(folder: Path, names: Iterable[str]) -> None:
    """Record files just written into a marked output folder in place (a batch OUT's evaluation
    tables and report), so that ``check_replaceable`` keeps them once edited. Unmarked: nothing."""
    folder = Path(folder)
    marker = read_marker(folder)
    if marker is None:
        return
    digests = dict(marker.get("digests") or {})
    digests.update({n: file_digest(folder / n) for n in names})
    _write_doc(folder, {**marker, "digests": digests})


def write_marker(folder: Path, kind: str, files: Iterable[str] = ()) -> None:
    """Mark ``folder`` as a LinGuinE output of ``kind`` listing ``files`` with their digests."""
    names = sorted(files)
    digests = {n: file_digest(folder / n) for n in names if (folder / n).is_file()}
    _write_doc(folder, {"kind": kind, "linguine": __version__, "files": names, "digests": digests})


def _write_doc(folder: Path, doc: dict) -> None:
    tmp = folder / (MARKER + ".tmp")
    tmp.write_text(json.dumps(doc, indent=1), encoding="utf-8")
    tmp.replace(folder / MARKER)


def first_missing(path: Path) -> Path | None:
    """The topmost folder that creating ``path`` would create (None if it exists): what to undo."""
    path = Path(os.path.abspath(path))
    if path.exists():
        return None
    while not path.parent.exists() and path.parent != path:
        path = path.parent
    return path


def claim_out(out: Path, kind: str) -> Path:
    """Create OUT (normal permissions) and mark it as a LinGuinE output written into in place."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    marker = read_marker(out)
    if marker is None:
        write_marker(out, kind)
    return out
