#!/usr/bin/env bash
# Create .venv with everything LinGuinE needs. Usage:
#   bash scripts/setup_env.sh          core + test tools + learned backends + slicer-core (what the tests use)
#   bash scripts/setup_env.sh --core   core only (enough for `linguine demo` and the classical backends)
# Idempotent: rerunning only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
# shellcheck disable=SC1091
. .venv/bin/activate
python -m pip install -q --upgrade pip
if [ "${1:-}" = "--core" ]; then
  python -m pip install -q -e .
  exit 0
fi
# CPU torch first: a bare torch requirement would pull a CUDA build of several GB.
python -m pip install -q "torch==2.13.0"
python -m pip install -q -e ".[test]"
[ -f scripts/install_learned.sh ] && bash scripts/install_learned.sh
[ -f scripts/install_slicer_core.sh ] && bash scripts/install_slicer_core.sh
python -m pip check || echo "setup_env: pip check reported the conflicts above (see README)"
