#!/usr/bin/env bash
# Install what the learned backends (uniGradICON family, nnInteractive, VISTA3D) need into the
# ACTIVE Python environment. Idempotent: a second run installs nothing new.
# Assumes CPU torch is already there (pip install torch==2.13.0); it is pinned, never replaced.
# Measured on a fresh venv holding only torch 2.13.0 (2 busy cores, 2026-11): first run 2-9 min
# (download-bound), +1.07 GB in the venv; a second run 14 s (nothing installed).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
req="$here/requirements"
py="${LINGUINE_PYTHON:-python}"  # the active env's python (PYTHON is setup_env.sh's base interpreter)

if ! "$py" -c "import torch" 2>/dev/null; then
    echo "install_learned: torch is not installed in this environment; run first:" >&2
    echo "    $py -m pip install torch==2.13.0   (CPU build; or the PyTorch extension in Slicer)" >&2
    exit 1
fi
torch_version="$("$py" -c 'import torch; print(torch.__version__.split("+")[0])' 2>/dev/null)"
constraints="$(mktemp)"
trap 'rm -f "$constraints"' EXIT
# Keep whatever torch is installed (CPU 2.13.0 here, a CUDA build on a GPU machine).
grep -v '^torch==' "$req/constraints.txt" > "$constraints"
echo "torch==$torch_version" >> "$constraints"

NODEPS=(
    "icon_registration==1.1.9"
    "nnunetv2==2.8.1"
    "dynamic-network-architectures==0.4.4"
    "nninteractive==2.6.0"
)

# 0) Already there? (pip itself takes minutes to say so: it asks the index about every package.)
if "$py" - "$req/learned.txt" "${NODEPS[@]}" <<'PY'
import sys
from importlib.metadata import PackageNotFoundError, version
from pip._vendor.packaging.requirements import Requirement

lines = [ln.split("#")[0].strip() for ln in open(sys.argv[1])]
for text in [ln for ln in lines if ln] + sys.argv[2:]:
    req = Requirement(text)
    if req.marker is not None and not req.marker.evaluate():
        continue
    try:
        if not req.specifier.contains(version(req.name), prereleases=True):
            sys.exit(1)
    except PackageNotFoundError:
        sys.exit(1)
PY
then
    echo "install_learned: requirements already satisfied, nothing to install"
else
    # 1) Real dependencies, resolved by pip, torch pinned.
    "$py" -m pip install -q -c "$constraints" -r "$req/learned.txt"
    # 2) The model packages without their declared deps (they would pull torchvision/timm/itk).
    "$py" -m pip install -q --no-deps "${NODEPS[@]}"
fi

# 3) Check: the backends' modules import, and torch is still the one we started with.
"$py" - <<'PY'
import torch
import icon_registration.networks  # noqa: F401
import monai.networks.nets  # noqa: F401
import nnInteractive.inference.inference_session  # noqa: F401
import nnInteractive.inference.remote  # noqa: F401  (nninteractive-client)
print(f"install_learned: ok (torch {torch.__version__})")
PY
"$py" -m pip check || echo "install_learned: pip check notes above are expected (see requirements/learned.txt)"
