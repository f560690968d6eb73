#!/usr/bin/env bash
# Install slicer-core (3D Slicer's MRML, headless, no Qt) into the ACTIVE Python environment, so
# the Slicer module's logic tests (Testing/slicer) run without the Slicer application.
# Idempotent: does nothing when slicer-core is already importable with MRML.
#   bash scripts/install_slicer_core.sh            # uses $PYTHON or python
# slicer-core pins its own vtk (9.6.x) and is ~1 GB installed.
set -euo pipefail
py="${PYTHON:-python}"
version="${SLICER_CORE_VERSION:-5.13.31053.0}"

has_mrml() { "$py" - <<'PY' 2>/dev/null
import sys
sys.path = [p for p in sys.path if not p.rstrip("/").endswith("Testing")]
import slicer
raise SystemExit(0 if hasattr(slicer, "vtkMRMLScene") else 1)
PY
}

if has_mrml; then
    echo "install_slicer_core: slicer-core already importable"
    exit 0
fi
# PyPI's unrelated package 'slicer' (0.0.x) uses the same import name and would shadow MRML.
if "$py" -m pip show slicer >/dev/null 2>&1; then
    echo "install_slicer_core: removing the unrelated PyPI package 'slicer' (same import name)" >&2
    "$py" -m pip uninstall -y -q slicer
fi
"$py" -m pip install -q "slicer-core==$version"
if has_mrml; then
    echo "install_slicer_core: slicer-core $version installed"
else
    echo "install_slicer_core: slicer-core installed but 'import slicer' has no vtkMRMLScene" >&2
    exit 1
fi
