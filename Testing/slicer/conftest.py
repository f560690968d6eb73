"""Headless MRML fixtures (slicer-core). Everything here skips when slicer-core is missing.

The fixtures live in ``slicer_fixtures.py``; this file only makes ``slicer`` importable safely
and puts the repository and the module folder on sys.path.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
MODULE_DIR = REPO / "LinGuinE"


def _import_slicer_core() -> bool:
    """Import slicer-core's ``slicer`` without this folder leaking into it.

    slicer-core's ``slicer/__init__.py`` extends its package path over every ``slicer`` folder on
    sys.path and imports what it finds there; pytest puts ``Testing/`` on sys.path, so this very
    folder (``Testing/slicer``) would be imported as part of ``slicer``. Hide ``Testing/`` while
    ``slicer`` is imported the first time.
    """
    testing = str(REPO / "Testing")
    saved = list(sys.path)
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.getcwd()) != testing]
    try:
        import slicer
    except ImportError:
        return False
    finally:
        sys.path[:] = saved
    # PyPI's unrelated 'slicer' 0.0.8 has the same import name but no MRML.
    return hasattr(slicer, "vtkMRMLScene")


SLICER_CORE = _import_slicer_core()

for path in (str(REPO), str(MODULE_DIR)):
    if path not in sys.path:
        sys.path.insert(0, path)

if SLICER_CORE:
    from slicer_fixtures import application_scene, ball_study  # noqa: F401  (fixtures)
