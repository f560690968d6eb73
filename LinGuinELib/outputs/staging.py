"""Replacing a whole output folder safely (data-safety policy: ``safety``): a single-study OUT is
written into a hidden sibling ``.OUT.partial-*`` and swapped in with one atomic exchange where the
filesystem has it (Linux ``renameat2``), else with two renames; at every instant the old or the new
OUT exists under its name, or a leftover ``.OUT.old-*`` is renamed back by the next run. Leftovers
of killed runs on the same OUT are removed by the next run (only folders that carry LinGuinE's
marker or are empty, and not locked by a live run).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from ..errors import EnvironmentProblem
from .safety import MARKER, read_marker, resolved, write_marker

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; leftovers are then only cleaned when old
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

DISK_FULL = (errno.ENOSPC, errno.EDQUOT)  # a write failed for want of space (device full, quota reached)


def _mode_from_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o777 & ~mask


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
    disk full) the private folder is removed and OUT is left as it was; a full disk is said as an
    ``EnvironmentProblem`` naming OUT (the OS's own error names no file).
    """
    out = resolved(out)  # a symlinked OUT: its target is replaced, the link kept
    out.parent.mkdir(parents=True, exist_ok=True)
    recover_leftovers(out)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        with _locked(tmp):
            os.chmod(tmp, _mode_from_umask())
            write_marker(tmp, kind)
            yield tmp
            write_marker(tmp, kind, [p.relative_to(tmp).as_posix() for p in tmp.rglob("*") if p.name != MARKER])
            swap_in(tmp, out)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError) and exc.errno in DISK_FULL:  # the OS names no file: say which OUT
            raise EnvironmentProblem(f"{out}: the disk filled up while the results were written ({exc.strerror}); "
                                     "nothing half-written was kept (a previous output there is intact): "
                                     "free some space and run again") from exc
        raise
