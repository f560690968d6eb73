"""Data safety: the one place that decides where LinGuinE may write and what it may replace.

Policy (README, "Data safety"): LinGuinE never deletes or replaces anything it did not create.

- OUT must be a new path, an empty folder, or a folder holding a previous LinGuinE output of
  the same kind, recognised by the marker file ``MARKER`` that LinGuinE writes into every
  output (a single-study output also lists every file it wrote: any other file protects it).
  Never a file, never a folder that holds an input (or is one), never inside an input folder
  (a DICOM series folder).
- A single-study OUT is replaced whole, and only when the new one is complete: it is written
  into a hidden sibling ``.OUT.partial-*`` and swapped in with one atomic exchange where the
  filesystem has it (Linux ``renameat2``), else with two renames; at every instant the old or
  the new OUT exists under its name, or a leftover ``.OUT.old-*`` is renamed back by the next
  run. Leftovers of killed runs on the same OUT are removed by the next run (only folders that
  carry LinGuinE's marker or are empty, and not locked by a live run).
- File names derived from user text (scan, lesion, patient ids) come only from ``safe_name`` /
  ``unique_names``: readable, no separators, no leading dots, no NUL or control characters,
  length-capped, no reserved device names, unique within a run even on case-insensitive
  filesystems. The original ids stay in the files' contents.

- A single-study OUT's marker records each file's size and hash: a file changed since (a
  segmentation corrected in Slicer, a note in the table) protects the OUT like a foreign file.
- A single file is replaced only when it carries LinGuinE's signature (``check_replaceable``).

Entry points: ``check_out`` (refuse a bad OUT before any work), ``staged_output`` (write a
whole-folder output safely), ``claim_out`` (create/mark a folder written into in place, e.g. a
batch OUT), ``check_replaceable`` (may this one file be replaced) with ``record_written``,
``reseal`` (record files rewritten after the swap), ``safe_name`` and ``unique_names``.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import hashlib
import json
import logging
import os
import shutil
import sys
import tempfile
import unicodedata
from collections.abc import Iterable, Iterator
from pathlib import Path

from .. import __version__
from ..errors import EnvironmentProblem, InputError

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; leftovers are then only cleaned when old
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

MARKER = ".linguine-output.json"
NAME_MAX_BYTES = 100  # leaves room for suffixes and collision tags under the usual 255-byte limit
_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)), *(f"lpt{i}" for i in range(10))}
_FORBIDDEN = set('/\\:*?"<>|')
SIGNATURE_BYTES = 4096  # how much of an existing file is read to recognise it as LinGuinE's


# ----------------------------------------------------------------------------- file names


def safe_name(text: str, fallback: str = "unnamed") -> str:
    """A readable file or folder name for a user id that cannot escape its folder.

    Letters of any script are kept; separators, control characters and characters Windows
    forbids become ``_``; leading/trailing dots and spaces are removed (no ``..``, no hidden
    files); reserved device names get a ``_`` prefix; long names are cut (UTF-8 bytes) and
    tagged with a hash of the full id so that two long ids stay distinct.
    """
    text = unicodedata.normalize("NFC", str(text))
    chars = ["_" if (c in _FORBIDDEN or not c.isprintable() or c.isspace() and c != " ") else c
             for c in text]
    name = "".join(chars).strip(" .")
    if not name:
        name = fallback
    if name.split(".")[0].lower() in _RESERVED:
        name = "_" + name
    raw = name.encode("utf-8")
    if len(raw) > NAME_MAX_BYTES:
        cut = raw[: NAME_MAX_BYTES - 9].decode("utf-8", "ignore").rstrip(" .")
        name = f"{cut}~{_digest(text)}"
    return name


def _digest(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:8]


def unique_names(ids: Iterable[str]) -> dict[str, str]:
    """``safe_name`` of each id, made unique ignoring case (macOS/Windows filesystems).

    Deterministic: the first id (in the given order) keeps the plain name, later ones whose
    name collides get ``~<hash of the id>`` appended, which does not depend on the other ids.
    """
    out: dict[str, str] = {}
    taken: set[str] = set()
    for i in ids:
        if i in out:
            continue
        name = safe_name(i)
        if name.casefold() in taken:
            name = f"{name}~{_digest(i)}"
        k = 2
        while name.casefold() in taken:  # hash collision: practically never
            name = f"{safe_name(i)}~{_digest(i)}-{k}"
            k += 1
        taken.add(name.casefold())
        out[i] = name
    return out


# ----------------------------------------------------------------------------- OUT checks


def _abs(path: Path) -> Path:
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
    """The marker of a LinGuinE output folder, or None when there is none (or it is unreadable)."""
    try:
        data = json.loads((Path(folder) / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _existing_ancestor(path: Path) -> Path:
    p = path
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def check_writable(out: Path, need_bytes: int = 0) -> None:
    """Raise EnvironmentProblem when OUT cannot be created/written or lacks free space."""
    base = _existing_ancestor(out)
    if not base.is_dir():
        raise InputError(f"--out {out}: '{base}' is a file, not a folder")
    try:
        st = os.statvfs(base)
    except OSError as exc:
        raise EnvironmentProblem(f"--out {out}: cannot inspect '{base}' ({exc.strerror})") from None
    if st.f_blocks == 0:
        raise EnvironmentProblem(f"--out {out}: '{base}' is not on a real filesystem (e.g. /proc)")
    if not os.access(base, os.W_OK | os.X_OK):
        raise EnvironmentProblem(f"--out {out}: '{base}' is not writable")
    free = st.f_bavail * st.f_frsize
    if need_bytes and free < need_bytes:
        raise EnvironmentProblem(f"--out {out}: {free / 1e6:.0f} MB free on that filesystem, "
                                 f"about {need_bytes / 1e6:.0f} MB needed")


def check_outside_inputs(out: Path, inputs: Iterable[Path], flag: str = "--out") -> None:
    """Refuse an output path (folder or file) that is or holds an input, or lies inside an input
    folder (a DICOM series, a folder of images, the dataset): the one rule for every command.
    Symlinks and other names of the same folder count as the folder. Writes nothing."""
    target = _abs(out)
    for item in inputs:
        src = _abs(item)
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
    target = _abs(out)
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
    check_writable(target, need_bytes)
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
    _write_marker(Path(folder), str(marker.get("kind", "track")), marker.get("files", []))


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


def _write_marker(folder: Path, kind: str, files: Iterable[str] = ()) -> None:
    names = sorted(files)
    digests = {n: file_digest(folder / n) for n in names if (folder / n).is_file()}
    _write_doc(folder, {"kind": kind, "linguine": __version__, "files": names, "digests": digests})


def _write_doc(folder: Path, doc: dict) -> None:
    tmp = folder / (MARKER + ".tmp")
    tmp.write_text(json.dumps(doc, indent=1), encoding="utf-8")
    tmp.replace(folder / MARKER)


def _mode_from_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o777 & ~mask


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
        _write_marker(out, kind)
    return out


# ----------------------------------------------------------------------------- swap and leftovers


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """Hold an advisory lock on ``folder`` so that other runs know it is in use."""
    if fcntl is None:
        yield
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _in_use(folder: Path) -> bool:
    if fcntl is None:
        return False
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except OSError:
        return True
    finally:
        os.close(fd)


def _ours(folder: Path) -> bool:
    try:
        return folder.is_dir() and not folder.is_symlink() and (
            read_marker(folder) is not None or not any(folder.iterdir()))
    except OSError:
        return False


def recover_leftovers(out: Path) -> None:
    """Clean what killed runs left next to OUT; if OUT itself is missing, restore the old one."""
    out = Path(out)
    parent = out.parent
    if not parent.is_dir():
        return
    leftovers = [p for pat in (f".{out.name}.old-*", f".{out.name}.partial-*")
                 for p in parent.glob(pat) if _ours(p) and not _in_use(p)]
    if not out.exists():
        olds = sorted((p for p in leftovers if ".old-" in p.name), key=lambda p: p.stat().st_mtime)
        if olds:
            olds[-1].rename(out)
            log.warning("restored %s from %s (a previous run was killed while replacing it)", out, olds[-1].name)
            leftovers.remove(olds[-1])
    for p in leftovers:
        log.info("removing %s, left by an interrupted run", p)
        shutil.rmtree(p, ignore_errors=True)


def _rename_exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux renameat2 RENAME_EXCHANGE); False when unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    rc = fn(at_fdcwd, os.fsencode(str(a)), at_fdcwd, os.fsencode(str(b)), rename_exchange)
    return rc == 0


def swap_in(new: Path, out: Path) -> None:
    """Make the complete folder ``new`` appear as ``out``; the old ``out`` is then removed."""
    if not out.exists():
        os.rename(new, out)
        return
    if _rename_exchange(new, out):
        shutil.rmtree(new, ignore_errors=True)  # ``new`` now names the old output
        return
    old = out.with_name(f".{out.name}.old-{new.name.rsplit('-', 1)[-1]}")
    os.rename(out, old)
    os.rename(new, out)  # killed between the renames: recover_leftovers renames ``old`` back
    shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def staged_output(out: Path, kind: str = "track") -> Iterator[Path]:
    """Yield a private folder to write a complete output into; it replaces OUT on success.

    The caller must have checked OUT with ``check_out``. On any exception (Ctrl-C, SIGTERM,
    disk full) the private folder is removed and OUT is left as it was.
    """
    out = _abs(out)  # a symlinked OUT: its target is replaced, the link kept
    out.parent.mkdir(parents=True, exist_ok=True)
    recover_leftovers(out)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        with _locked(tmp):
            os.chmod(tmp, _mode_from_umask())
            _write_marker(tmp, kind)
            yield tmp
            _write_marker(tmp, kind, [p.relative_to(tmp).as_posix() for p in tmp.rglob("*") if p.name != MARKER])
            swap_in(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
